"""The models as the gateway shows and checks them: `GET /models`, the per-model part of `/health` and
`/metrics`, and the check every submission passes (`check_model`).

`model_report` is the one read behind all of them: the offer (live workers' heartbeats and the declared models,
`jetscribe.offer`) and each model's queue, from its consumer on the jobs stream (`consumers_info`: one request
for every model), with the age of its oldest waiting job (the first message after the consumer's last delivery
on the model's subjects). A model is listed when it is on offer or has a consumer (jobs may still wait for a
model whose workers are gone).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from aiohttp import web
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from gateway import keys
from gateway.errors import ModelUnavailableError
from jetscribe.offer import ModelOffer, english_only_by_name
from schemas import WorkerHeartbeat, encode, names
from schemas.api import ModelList, ModelStatus, QueueDepth

log = logging.getLogger(__name__)

NO_JOBS: Final = QueueDepth(pending=0, in_flight=0)


@dataclass(frozen=True, slots=True)
class ModelReport:
    """Every model's state and queue at one moment, with the live workers and the jobs of the whole stream."""

    models: list[ModelStatus]
    workers: list[WorkerHeartbeat]
    queue: QueueDepth
    """Every model's queue together, plus jobs not yet routed to a model (they wait on the router)."""
    default_model: str


async def check_model(app: web.Application, model: str | None, language: str | None, languages: Sequence[str]) -> str:
    """The model a submission runs with (`model`, else the default); 422 listing the models on offer when no live
    worker serves it and it is not declared, or when it is English-only and the job needs another language (its
    `language` or its allowed `languages`)."""
    chosen = model or app[keys.SETTINGS].job_default_model
    reason, offer = await app[keys.OFFERS].refusal(chosen, language, languages)
    if reason is not None:
        raise ModelUnavailableError(reason, on_offer=list(offer.models))
    return chosen


async def model_report(app: web.Application) -> ModelReport:
    """The models, their workers and queues now (raises what NATS raises)."""
    js = app[keys.JS]
    offer = await app[keys.OFFERS].current()
    queues: dict[str, QueueDepth] = {}
    unrouted = NO_JOBS
    for consumer in await js.consumers_info(names.JOBS_STREAM):
        name = consumer.name or ""
        if name == names.ROUTER_CONSUMER:
            unrouted = await _queue(js, consumer, names.JOBS_SUBJECT)
        elif (model := names.model_of_consumer(name)) is not None:
            queues[model] = await _queue(js, consumer, names.model_jobs_filter(model))
    models = [_status(name, offer, queues.get(name, NO_JOBS)) for name in sorted(set(offer.models) | set(queues))]
    every = [*queues.values(), unrouted]
    ages = [q.oldest_waiting_s for q in every if q.oldest_waiting_s is not None]
    total = QueueDepth(
        pending=sum(q.pending for q in every),
        in_flight=sum(q.in_flight for q in every),
        oldest_waiting_s=max(ages) if ages else None,
    )
    return ModelReport(models=models, workers=offer.workers, queue=total, default_model=offer.default_model)


def _status(name: str, offer: ModelOffer, queue: QueueDepth) -> ModelStatus:
    offered = offer.models.get(name)
    return ModelStatus(
        name=name,
        on_offer=offered is not None,
        default=name == offer.default_model,
        declared=offered.declared if offered else False,
        multilingual=offered.multilingual if offered else not english_only_by_name(name),
        quantization=offered.quantization if offered else None,
        workers=offered.workers if offered else 0,
        slots=offered.slots if offered else 0,
        busy_slots=offered.busy_slots if offered else 0,
        queue=queue,
    )


async def _queue(js: JetStreamContext, consumer: api.ConsumerInfo, subjects: str) -> QueueDepth:
    """A consumer's waiting and delivered jobs, and how long the first waiting one (on `subjects`) has waited."""
    pending = consumer.num_pending or 0
    oldest_waiting_s = None
    if pending:
        after = (consumer.delivered.stream_seq or 0) if consumer.delivered else 0
        try:
            first = await js.get_msg(names.JOBS_STREAM, seq=after + 1, subject=subjects, next=True)
        except NotFoundError:
            pass  # taken or acked since the consumer was read
        else:
            if first.time is not None:
                oldest_waiting_s = round(max(0.0, (datetime.now(UTC) - first.time).total_seconds()), 3)
    return QueueDepth(pending=pending, in_flight=consumer.num_ack_pending or 0, oldest_waiting_s=oldest_waiting_s)


async def list_models(request: web.Request) -> web.Response:
    """`GET /models`: every model on offer or with jobs queued, with its workers, slots and queue."""
    report = await model_report(request.app)
    body = ModelList(models=report.models, default_model=report.default_model)
    return web.Response(body=encode(body), content_type="application/json")
