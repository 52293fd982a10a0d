"""The consumers of the jobs stream: one durable consumer per (model, tenant), shared by the workers that serve
the model, and the router that moves jobs from the subject that names no model onto their model's subject.

A work-queue stream allows only consumers whose filters do not overlap (nats-server error 10100): each
(model, tenant) consumer filters on its one subject (`jetscribe.jobs.<model token>.<tenant>`), the router on
`jetscribe.jobs.submit`. Workers create a tenant's consumer when they find its subject holding jobs
(worker/fairshare.py); nats-server deletes it once it has been idle for `TENANT_CONSUMER_IDLE_S` (no pull
request and no job delivered and unacknowledged), so tenants that come and go leave nothing behind.
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
TENANT_CONSUMER_IDLE_S: Final = 600.0
"""`inactive_threshold` of a tenant's consumer. nats-server never deletes a consumer holding a delivered,
unacknowledged job (measured with nats-server 2.15.1), so this only ends consumers of tenants with no job running."""


def tenant_consumer_config(settings: Settings, model: str, tenant: str) -> api.ConsumerConfig:
    """The durable consumer of `tenant`'s jobs for `model`, shared by every worker that serves `model`."""
    # Each delivery's ack deadline; a job kept alive with in_progress() never reaches it.
    backoff = [settings.ack_wait_s * 2**attempt for attempt in range(settings.max_deliver - 1)]
    return api.ConsumerConfig(
        durable_name=names.tenant_consumer(model, tenant),
        description=f"Transcription workers serving model {model}: jobs of tenant {tenant}",
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subject=names.model_jobs_subject(model, tenant),
        ack_wait=settings.ack_wait_s,
        max_deliver=settings.max_deliver,
        backoff=backoff or None,
        max_ack_pending=max(MAX_ACK_PENDING, settings.worker_slots),
        inactive_threshold=TENANT_CONSUMER_IDLE_S,
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


async def ensure_tenant_consumer(js: JetStreamContext, settings: Settings, model: str, tenant: str) -> None:
    """Create (or bring up to date) the consumer of `tenant`'s jobs for `model`; safe from any number of workers."""
    await js.add_consumer(names.JOBS_STREAM, tenant_consumer_config(settings, model, tenant))


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


async def _delete_consumer(js: JetStreamContext, name: str, why: str) -> None:
    log.warning("deleting the consumer %r of an older jetscribe release from %s: %s", name, names.JOBS_STREAM, why)
    try:
        await js.delete_consumer(names.JOBS_STREAM, name)
    except NotFoundError:
        pass  # another worker deleted it first


async def retire_legacy_consumers(js: JetStreamContext, models: Sequence[str]) -> None:
    """Delete the consumers of older releases that overlap this one's: the unfiltered `workers` of releases before
    per-model routing, and `workers-<model token>` of each of `models` from releases before fair sharing.

    Either overlaps consumers of this release, so none could be created beside it. The jobs it had delivered and
    not acked stay in the stream and go to their tenant's consumer (or the router); a job an older worker is still
    running meanwhile may then run twice, and the job record's compare-and-set keeps one result.
    """
    if await _legacy_consumer(js) is not None:
        await _delete_consumer(js, names.LEGACY_WORKERS_CONSUMER, "jobs are now routed per model")
    for model in models:
        name = names.legacy_model_consumer(model)
        try:
            await js.consumer_info(names.JOBS_STREAM, name)
        except NotFoundError:
            continue
        await _delete_consumer(js, name, f"jobs of model {model} are now shared out per tenant")


async def ensure_consumers(
    js: JetStreamContext, settings: Settings, models: Sequence[str] = (), *, retire_legacy: bool = True
) -> bool:
    """Create or update the router; safe to call from any number of processes. Tenants' consumers are created
    when their jobs are first seen (`ensure_tenant_consumer`).

    Workers retire the consumers of older releases for `models`, the models they serve
    (`retire_legacy_consumers`). A gateway does not (its workers may still be older ones, consuming from them):
    while the unfiltered `workers` consumer is there, nothing is created and False is returned.
    """
    if retire_legacy:
        await retire_legacy_consumers(js, models)
    elif await _legacy_consumer(js) is not None:
        log.warning(
            "workers of an older jetscribe release still consume %s through %r: the router and per-tenant consumers "
            "come with the first worker of this release (upgrade workers before gateways)",
            names.JOBS_STREAM,
            names.LEGACY_WORKERS_CONSUMER,
        )
        return False
    await js.add_consumer(names.JOBS_STREAM, router_consumer_config(settings))
    return True
