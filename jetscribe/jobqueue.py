"""The consumers of the jobs stream: one durable consumer per model, shared by the workers that serve it, and
the router that moves jobs from the subject that names no model onto their model's subject.

A work-queue stream allows only consumers whose filters do not overlap (nats-server error 10100): each model's
consumer filters on its own subjects (`jetscribe.jobs.<model token>.>`), the router on `jetscribe.jobs.submit`.
Workers create the consumers of the models they serve; a gateway creates those of the declared models
(`JETSCRIBE_DECLARED_MODELS`), so that their lag is visible (KEDA scales on it) before any worker exists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from jetscribe.config import Settings
from schemas import names

log = logging.getLogger(__name__)

MAX_ACK_PENDING: Final = 1024
ROUTER_ACK_WAIT_S: Final = 30.0
"""Routing a job takes milliseconds; a router that died holding one gives it up this soon."""


def model_consumer_config(settings: Settings, model: str) -> api.ConsumerConfig:
    """The durable consumer shared by every worker that serves `model`, as these settings want it."""
    # Each delivery's ack deadline; a job kept alive with in_progress() never reaches it.
    backoff = [settings.ack_wait_s * 2**attempt for attempt in range(settings.max_deliver - 1)]
    return api.ConsumerConfig(
        durable_name=names.model_consumer(model),
        description=f"Transcription workers serving model {model}",
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subject=names.model_jobs_filter(model),
        ack_wait=settings.ack_wait_s,
        max_deliver=settings.max_deliver,
        backoff=backoff or None,
        max_ack_pending=max(MAX_ACK_PENDING, settings.worker_slots),
    )


def diarizers_consumer_config(settings: Settings) -> api.ConsumerConfig:
    """The durable consumer shared by every diarization worker: the same deliveries, ack deadline and back-off as a
    model's consumer (a diarization worker keeps its job alive with in_progress() too)."""
    backoff = [settings.ack_wait_s * 2**attempt for attempt in range(settings.max_deliver - 1)]
    return api.ConsumerConfig(
        durable_name=names.DIARIZERS_CONSUMER,
        description="Diarization workers",
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_wait=settings.ack_wait_s,
        max_deliver=settings.max_deliver,
        backoff=backoff or None,
        max_ack_pending=MAX_ACK_PENDING,
    )


def router_consumer_config(settings: Settings) -> api.ConsumerConfig:
    """The durable consumer of `jetscribe.jobs.submit`, shared by the routers of every worker."""
    return api.ConsumerConfig(
        durable_name=names.ROUTER_CONSUMER,
        description="Routes jobs that name no model's subject onto their model's subject",
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subject=names.JOBS_SUBJECT,
        ack_wait=ROUTER_ACK_WAIT_S,
        max_deliver=settings.max_deliver,
        max_ack_pending=MAX_ACK_PENDING,
    )


async def _legacy_consumer(js: JetStreamContext) -> api.ConsumerInfo | None:
    """The unfiltered `workers` consumer of an older release, if it is there."""
    try:
        info = await js.consumer_info(names.JOBS_STREAM, names.LEGACY_WORKERS_CONSUMER)
    except NotFoundError:
        return None
    return None if info.config.filter_subject or info.config.filter_subjects else info


async def retire_legacy_consumer(js: JetStreamContext) -> None:
    """Delete the unfiltered `workers` consumer of releases before per-model routing, if it is still there.

    It overlaps every other consumer of the work queue, so none could be created beside it. The jobs it had
    delivered and not acked stay in the stream and go to their model's consumer (or the router); a job an older
    worker is still running meanwhile may then run twice, and the job record's compare-and-set keeps one result.
    """
    if await _legacy_consumer(js) is None:
        return
    log.warning(
        "deleting the consumer %r of an older jetscribe release from %s: jobs are now routed per model",
        names.LEGACY_WORKERS_CONSUMER,
        names.JOBS_STREAM,
    )
    try:
        await js.delete_consumer(names.JOBS_STREAM, names.LEGACY_WORKERS_CONSUMER)
    except NotFoundError:
        pass  # another worker deleted it first


async def ensure_consumers(
    js: JetStreamContext, settings: Settings, models: Sequence[str], *, retire_legacy: bool = True
) -> bool:
    """Create or update the router and the consumers of `models`; safe to call from any number of processes.

    Workers retire the consumer of older releases (`retire_legacy_consumer`). A gateway does not (its workers
    may still be older ones, consuming from it): while it is there, nothing is created and False is returned.
    """
    if retire_legacy:
        await retire_legacy_consumer(js)
    elif await _legacy_consumer(js) is not None:
        log.warning(
            "workers of an older jetscribe release still consume %s through %r: the router and per-model consumers "
            "come with the first worker of this release (upgrade workers before gateways)",
            names.JOBS_STREAM,
            names.LEGACY_WORKERS_CONSUMER,
        )
        return False
    await js.add_consumer(names.JOBS_STREAM, router_consumer_config(settings))
    for model in models:
        await js.add_consumer(names.JOBS_STREAM, model_consumer_config(settings, model))
    return True
