"""Health of the service as this gateway sees it: `/health`, `/livez`, `/readyz`, `/metrics`.

All four are served without an API key (`gateway.auth.OPEN_PATHS`), so orchestrators and scrapers
need none. `/health`'s detail (worker hosts, pids, running job ids, GPUs, models, queue depth, the
diarization stage's workers and queue, the reasons it is degraded) is for operators: with API keys
configured a caller without a key gets only `{"status"}` and the same status code; a caller
presenting a key that is not valid gets 401.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from aiohttp import web
from nats.errors import Error as NatsError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import keys
from gateway.diarization import diarization_stage
from gateway.errors import UnauthorizedError
from gateway.joblist.counts import jobs_by_tenant
from gateway.models import ModelReport, model_report
from schemas import JobStatus, encode, names
from schemas.api import DiarizationStage, ErrorBody, Health, HealthSummary

log = logging.getLogger(__name__)

NATS_QUERY_TIMEOUT_S: Final = 3.0
TENANT_GAUGED: Final[tuple[JobStatus, ...]] = ("queued", "running", "diarizing")


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
    """NATS connectivity, queue depth, models, live workers and the diarization stage; 503 when NATS is down, no
    worker is alive, or transcribed jobs wait for diarization with no diarization worker alive.

    The detail needs a key when keys are configured (`may_see_detail`); without one the body is
    `HealthSummary`, with the same status code.
    """
    app = request.app
    detail = may_see_detail(request)
    nc = app[keys.NC]
    problems: list[str] = []
    report: ModelReport | None = None
    stage: DiarizationStage | None = None
    if not nc.is_connected:
        problems.append("not connected to NATS")
    else:
        try:
            async with asyncio.timeout(2 * NATS_QUERY_TIMEOUT_S):
                report = await model_report(app)
                stage = await diarization_stage(app[keys.JS])
        except (NatsError, TimeoutError) as exc:
            problems.append(f"NATS did not answer: {exc!r}")
        else:
            problems += model_problems(report) + diarization_problems(stage)
    if report is not None:
        app[keys.METRICS].observe(report)
    status = "degraded" if problems else "ok"
    body = (
        Health(
            status=status,
            nats_connected=nc.is_connected,
            queue=report.queue if report else None,
            workers=report.workers if report else [],
            models=report.models if report else [],
            diarization=stage,
            problems=problems,
        )
        if detail
        else HealthSummary(status=status)
    )
    return web.Response(status=503 if problems else 200, body=encode(body), content_type="application/json")


def model_problems(report: ModelReport) -> list[str]:
    """What is wrong with the workers and models: none alive, a default model no one takes, jobs no one will run."""
    problems = []
    if not report.workers:
        problems.append("no worker is alive (no heartbeat in the workers bucket)")
    if not any(model.default and model.on_offer for model in report.models):
        problems.append(
            f"the default model {report.default_model!r} is not on offer (no live worker serves it and it is not "
            "declared): jobs that name no model are refused"
        )
    for model in report.models:
        if not model.on_offer and model.queue.pending:
            problems.append(
                f"{model.queue.pending} job(s) wait for model {model.name!r}, which no live worker serves and which "
                "is not declared"
            )
    return problems


def diarization_problems(stage: DiarizationStage) -> list[str]:
    """Transcribed jobs that wait for diarization while no diarization worker is alive to take them."""
    if stage.queue.pending and not stage.diarizers:
        return [
            f"{stage.queue.pending} job(s) wait for diarization and no diarization worker is alive (no heartbeat in "
            f"the {names.DIARIZERS_BUCKET} bucket): run `jetscribe diarizer`"
        ]
    return []


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
    """Prometheus text exposition; the worker, model and queue gauges, and each tenant's jobs, are refreshed on
    each scrape."""
    app = request.app
    if app[keys.NC].is_connected:
        try:
            report = await model_report(app)
            per_tenant = {status: await jobs_by_tenant(app[keys.JS], status) for status in TENANT_GAUGED}
        except (NatsError, TimeoutError) as exc:
            log.warning("metrics: models and queues unavailable: %r", exc)
        else:
            app[keys.METRICS].observe(report)
            app[keys.METRICS].observe_tenants(per_tenant)
    body = generate_latest(app[keys.METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
