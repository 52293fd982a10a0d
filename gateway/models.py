"""The models as the gateway shows and checks them: `GET /models`, the per-model part of `/health` and
`/metrics`, and the check every submission passes (`check_model`).

`model_report` is the one read behind all of them: the offer (live workers' heartbeats and the declared models,
`jetscribe.offer`) and each model's queue. A model's jobs wait on one subject per tenant; the stream counts the
messages of each (`stream_info` with the subject filter `jetscribe.jobs.*.*`: one request for every model), and
each tenant's consumer (`consumers_info`: one request per 256 consumers) how many of them are delivered and not
yet acknowledged (in flight); the rest are pending. The age of a model's oldest waiting job is the oldest of its
tenants' first undelivered messages. A model is listed when it is on offer or has jobs (jobs may still wait for
a model whose workers are gone).
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
CONSUMER_PAGE: Final = 256
"""Consumers per page of nats-server's consumer list (JSApiListLimit)."""


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
    queues, unrouted = await _queues(js)
    models = [_status(name, offer, queues.get(name, NO_JOBS)) for name in sorted(set(offer.models) | set(queues))]
    every = [*queues.values(), unrouted]
    ages = [q.oldest_waiting_s for q in every if q.oldest_waiting_s is not None]
    total = QueueDepth(
        pending=sum(q.pending for q in every),
        in_flight=sum(q.in_flight for q in every),
        oldest_waiting_s=max(ages) if ages else None,
    )
    return ModelReport(models=models, workers=offer.workers, queue=total, default_model=offer.default_model)


async def _consumers(js: JetStreamContext) -> list[api.ConsumerInfo]:
    consumers: list[api.ConsumerInfo] = []
    while page := await js.consumers_info(names.JOBS_STREAM, offset=len(consumers)):
        consumers.extend(page)
        if len(page) < CONSUMER_PAGE:
            break
    return consumers


async def _queues(js: JetStreamContext) -> tuple[dict[str, QueueDepth], QueueDepth]:
    """Each model's queue, summed over its tenants, and the jobs not yet routed to a model."""
    info = await js.stream_info(names.JOBS_STREAM, subjects_filter=names.ALL_MODEL_JOBS_FILTER)
    unrouted = NO_JOBS
    consumers: dict[tuple[str, str], api.ConsumerInfo] = {}
    for consumer in await _consumers(js):
        if consumer.name == names.ROUTER_CONSUMER:
            unrouted = await _queue(js, consumer, names.JOBS_SUBJECT, consumer.num_pending or 0)
        elif (place := names.place_of_jobs_subject(consumer.config.filter_subject or "")) is not None:
            consumers[place] = consumer
    tenants: dict[str, list[QueueDepth]] = {}
    for subject, count in (info.state.subjects or {}).items():
        place = names.place_of_jobs_subject(subject)
        if place is None:
            continue
        tenant_consumer = consumers.get(place)
        in_flight = (tenant_consumer.num_ack_pending or 0) if tenant_consumer else 0
        depth = await _queue(js, tenant_consumer, subject, max(0, count - in_flight))
        tenants.setdefault(place[0], []).append(depth)
    return {model: _sum(depths) for model, depths in tenants.items()}, unrouted


def _sum(depths: list[QueueDepth]) -> QueueDepth:
    ages = [d.oldest_waiting_s for d in depths if d.oldest_waiting_s is not None]
    return QueueDepth(
        pending=sum(d.pending for d in depths),
        in_flight=sum(d.in_flight for d in depths),
        oldest_waiting_s=max(ages) if ages else None,
    )


def _status(name: str, offer: ModelOffer, queue: QueueDepth) -> ModelStatus:
    offered = offer.models.get(name)
    return ModelStatus(
        name=name,
        on_offer=offered is not None,
        default=name == offer.default_model,
        declared=offered.declared if offered else False,
        multilingual=offered.multilingual if offered else not english_only_by_name(name),
        quantization=offered.quantization if offered else None,
        engines=list(offered.engines) if offered else [],
        workers=offered.workers if offered else 0,
        slots=offered.slots if offered else 0,
        busy_slots=offered.busy_slots if offered else 0,
        queue=queue,
    )


async def _queue(js: JetStreamContext, consumer: api.ConsumerInfo | None, subject: str, pending: int) -> QueueDepth:
    """The queue on `subject` behind `consumer` (None: none made yet), with `pending` jobs waiting: how long the
    first waiting one has waited."""
    oldest_waiting_s = None
    if pending:
        after = (consumer.delivered.stream_seq or 0) if consumer and consumer.delivered else 0
        try:
            first = await js.get_msg(names.JOBS_STREAM, seq=after + 1, subject=subject, next=True)
        except NotFoundError:
            pass  # taken or acked since the consumer was read
        else:
            if first.time is not None:
                oldest_waiting_s = round(max(0.0, (datetime.now(UTC) - first.time).total_seconds()), 3)
    in_flight = (consumer.num_ack_pending or 0) if consumer else 0
    return QueueDepth(pending=pending, in_flight=in_flight, oldest_waiting_s=oldest_waiting_s)


async def list_models(request: web.Request) -> web.Response:
    """`GET /models`: every model on offer or with jobs queued, with its workers, slots and queue."""
    report = await model_report(request.app)
    body = ModelList(models=report.models, default_model=report.default_model)
    return web.Response(body=encode(body), content_type="application/json")
