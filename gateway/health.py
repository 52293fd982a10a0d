"""Health of the service as this gateway sees it: `/health`, `/livez`, `/readyz`, `/metrics`.

All four are served without an API key (`gateway.auth.OPEN_PATHS`), so orchestrators and scrapers
need none. `/health`'s detail (worker hosts, pids, running job ids, GPUs, queue depth, the reasons
it is degraded) is for operators: with API keys configured a caller without a key gets only
`{"status"}` and the same status code; a caller presenting a key that is not valid gets 401.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from aiohttp import web
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import keys
from gateway.errors import UnauthorizedError
from gateway.joblist.counts import jobs_by_tenant
from schemas import JobStatus, SchemaError, WorkerHeartbeat, encode, names
from schemas.api import ErrorBody, Health, HealthSummary, QueueDepth
from schemas.codec import decode_heartbeat

log = logging.getLogger(__name__)

NATS_QUERY_TIMEOUT_S: Final = 3.0
TENANT_GAUGED: Final[tuple[JobStatus, ...]] = ("queued", "running")


async def queue_depth(app: web.Application) -> QueueDepth:
    """Jobs waiting (pending) and delivered but not yet acked (in flight), from the workers' consumer."""
    js = app[keys.JS]
    try:
        info = await js.consumer_info(names.JOBS_STREAM, names.WORKERS_CONSUMER, timeout=NATS_QUERY_TIMEOUT_S)
    except NotFoundError:
        # No worker has ever started: every message in the work queue is waiting.
        stream = await js.stream_info(names.JOBS_STREAM)
        return QueueDepth(pending=stream.state.messages or 0, in_flight=0)
    return QueueDepth(pending=info.num_pending or 0, in_flight=info.num_ack_pending or 0)


async def live_workers(app: web.Application) -> list[WorkerHeartbeat]:
    """Workers whose heartbeat has not expired from the workers bucket.

    The keys come from the bucket's stream state rather than `KeyValue.keys()`, which would open a
    consumer on every probe of an orchestrator polling this route.
    """
    bucket = app[keys.TOPOLOGY].workers
    prefix = names.kv_subject(names.WORKERS_BUCKET, "")
    info = await app[keys.JS].stream_info(
        names.kv_stream(names.WORKERS_BUCKET), subjects_filter=names.kv_subject(names.WORKERS_BUCKET)
    )
    workers = []
    for subject in sorted(info.state.subjects or {}):
        key = subject.removeprefix(prefix)
        try:
            entry = await bucket.get(key)
        except NotFoundError:
            continue  # deleted by a worker that stopped, or expired just now
        if not entry.value:
            continue
        try:
            workers.append(decode_heartbeat(entry.value))
        except SchemaError as exc:
            log.warning("ignoring worker heartbeat %s: %s", key, exc)
    return workers


def may_see_detail(request: web.Request) -> bool:
    """Whether `/health` shows its detail: keys are off, or the request carries a valid key.

    Raises UnauthorizedError for a bearer token that is not one of the keys: a caller that tried
    to authenticate learns that its key is wrong rather than seeing less than it expected.
    """
    tenancy = request.app[keys.TENANCY]
    if not tenancy.keys_required:
        return True
    authorization = request.headers.get("Authorization")
    if authorization is None:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or tenancy.caller_of(token.strip()) is None:
        raise UnauthorizedError(
            "the API key is not valid for this service: check the key, or leave `Authorization` out for the "
            "status alone"
        )
    return True


async def health(request: web.Request) -> web.Response:
    """NATS connectivity, queue depth and live workers; 503 when NATS is down or no worker is alive.

    The detail needs a key when keys are configured (`may_see_detail`); without one the body is
    `HealthSummary`, with the same status code.
    """
    app = request.app
    detail = may_see_detail(request)
    nc = app[keys.NC]
    problems: list[str] = []
    queue: QueueDepth | None = None
    workers: list[WorkerHeartbeat] = []
    if not nc.is_connected:
        problems.append("not connected to NATS")
    else:
        try:
            async with asyncio.timeout(2 * NATS_QUERY_TIMEOUT_S):
                queue = await queue_depth(app)
                workers = await live_workers(app)
        except (NatsError, TimeoutError) as exc:
            problems.append(f"NATS did not answer: {exc!r}")
        else:
            if not workers:
                problems.append("no worker is alive (no heartbeat in the workers bucket)")
    metrics = app[keys.METRICS]
    metrics.workers_alive.set(len(workers))
    if queue is not None:
        metrics.queue_pending.set(queue.pending)
        metrics.queue_in_flight.set(queue.in_flight)
    status = "degraded" if problems else "ok"
    body = (
        Health(status=status, nats_connected=nc.is_connected, queue=queue, workers=workers, problems=problems)
        if detail
        else HealthSummary(status=status)
    )
    return web.Response(status=503 if problems else 200, body=encode(body), content_type="application/json")


async def livez(request: web.Request) -> web.Response:
    """200 while the process serves HTTP at all (for liveness probes)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when connected to NATS with the topology in place (for readiness probes), else 503."""
    app = request.app
    if not app[keys.NC].is_connected:
        return _not_ready("not connected to NATS")
    try:
        await app[keys.JS].stream_info(names.JOBS_STREAM)
    except (NatsError, TimeoutError) as exc:
        return _not_ready(f"the jobs stream is not available: {exc!r}")
    return web.json_response({"status": "ready"})


def _not_ready(reason: str) -> web.Response:
    return web.Response(status=503, body=encode(ErrorBody(error=reason)), content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition; the queue gauges, the whole queue's and each tenant's, are refreshed on each
    scrape."""
    app = request.app
    registry = app[keys.METRICS].registry
    if app[keys.NC].is_connected:
        try:
            depth = await queue_depth(app)
            per_tenant = {status: await jobs_by_tenant(app[keys.JS], status) for status in TENANT_GAUGED}
        except (NatsError, TimeoutError) as exc:
            log.warning("metrics: queue depth unavailable: %r", exc)
        else:
            app[keys.METRICS].queue_pending.set(depth.pending)
            app[keys.METRICS].queue_in_flight.set(depth.in_flight)
            gauge = app[keys.METRICS].tenant_jobs
            # A tenant whose jobs have all moved on must read 0, not keep its last count.
            gauge.clear()
            for status, counts in per_tenant.items():
                for tenant, count in counts.items():
                    gauge.labels(tenant, status).set(count)
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
