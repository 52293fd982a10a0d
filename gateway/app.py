"""The gateway's aiohttp application: routes, error handling, authentication and lifespan."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from nats.aio.client import Client
from nats.errors import Error as NatsError

from gateway import health, jobs, keys, limits, models, openapi, sse, submit, webpage
from gateway.auth import auth_middleware
from gateway.errors import GatewayError, OpenAIError, QueueFullError, UnauthorizedError, error_response
from gateway.fanout import JobEventHub
from gateway.joblist.index import JobListIndex
from gateway.joblist.indexer import indexer_ctx
from gateway.joblist.pages import JobListReader
from gateway.metrics import GatewayMetrics
from gateway.openai_api import models as openai_models
from gateway.openai_api import routes as openai_routes
from gateway.openai_api.errors import openai_error_response, openai_errors_middleware
from gateway.tenants import Tenancy
from gateway.webhooks import webhook_ctx
from jetscribe.config import Settings
from jetscribe.errors import ConcurrentUpdateError, JobNotFoundError
from jetscribe.jobqueue import ensure_consumers
from jetscribe.jobstore import JobStore
from jetscribe.offer import OfferReader
from jetscribe.topology import Topology
from schemas import names

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER: Final = "X-Request-Id"
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
JOB_ID = "{job_id:" + names.JOB_ID_PATTERN.removeprefix("^").removesuffix("$") + "}"


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error becomes `{"error": "...", "request_id": "..."}` with its status; foreign exceptions are
    translated here, and one nobody expected is logged with its traceback and answered 500. Every answer
    not yet sent carries the request's id in `X-Request-Id`."""
    request_id = request_id_of(request)
    try:
        response = await handler(request)
    except ConnectionResetError:
        raise  # the client left: there is nobody to answer
    except Exception as exc:
        response = _error_answer(request, exc, request_id)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def request_id_of(request: web.Request) -> str:
    """The client's `X-Request-Id` when it is a sane token, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _error_answer(request: web.Request, exc: Exception, request_id: str) -> web.Response:
    def answer(status: int, message: str, headers: dict[str, str] | None = None, detail: Any = None) -> web.Response:
        return error_response(status, message, headers, request_id=request_id, detail=detail)

    match exc:
        case OpenAIError():
            return openai_error_response(exc, request_id=request_id)
        case QueueFullError():
            return answer(exc.status, exc.message, {"Retry-After": str(exc.retry_after_s)})
        case UnauthorizedError():
            return answer(exc.status, exc.message, {"WWW-Authenticate": "Bearer"})
        case GatewayError():
            return answer(exc.status, exc.message, detail=exc.detail)
        case JobNotFoundError():
            return answer(404, str(exc))
        case ConcurrentUpdateError():
            return answer(409, str(exc))
        case web.HTTPException() if exc.status >= 400:
            kept = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
            return answer(exc.status, _http_error_message(request, exc), kept)
        case web.HTTPException():
            raise exc
        case NatsError() | TimeoutError():
            log.warning("%s %s: NATS unavailable: %r (request %s)", request.method, request.path, exc, request_id)
            return answer(503, f"the message broker is unavailable ({exc!r}); try again shortly")
    log.error("%s %s failed (request %s)", request.method, request.path, request_id, exc_info=exc)
    return answer(
        500,
        f"the gateway failed unexpectedly while handling {request.method} {request.path}; it logged the cause "
        f"under request id {request_id}: quote it when you report this",
    )


def _http_error_message(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"no such resource: {request.method} {request.path} (the API is described at /docs)"
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path}"
    return exc.text or exc.reason


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    request.app[keys.METRICS].requests.labels(request.method, name, str(response.status)).inc()
    return response


async def event_hub_ctx(app: web.Application) -> AsyncIterator[None]:
    async with JobEventHub(app[keys.NC]) as hub:
        app[keys.HUB] = hub
        yield


async def router_consumer_ctx(app: web.Application) -> AsyncIterator[None]:
    """The router's consumer exists before any worker does. Jobs for a model scaled to zero wait on their tenant's
    subject; `/metrics` counts them (`jetscribe_model_queue_pending`, what KEDA scales on)."""
    await ensure_consumers(app[keys.JS], app[keys.SETTINGS], retire_legacy=False)
    yield


async def end_event_streams(app: web.Application) -> None:
    """At shutdown, before in-flight requests are awaited: open event streams end (clients resume elsewhere)."""
    app[keys.HUB].close_streams()


def create_app(settings: Settings, nc: Client, topology: Topology) -> web.Application:
    """The gateway application on an open NATS connection whose topology is in place."""
    app = web.Application(
        middlewares=[
            metrics_middleware,
            openai_errors_middleware,
            errors_middleware,
            auth_middleware,
            limits.limits_middleware,
        ],
        client_max_size=limits.MAX_BODY_BYTES,
    )
    app[limits.STREAM_SLOTS] = limits.StreamSlots(settings.max_sse_clients)
    app[limits.UPLOAD_SLOTS] = limits.UploadSlots(settings.max_uploads_per_caller)
    app[keys.SETTINGS] = settings
    app[keys.TENANCY] = tenancy = Tenancy.from_settings(settings)
    app[keys.NC] = nc
    app[keys.JS] = nc.jetstream()
    app[keys.TOPOLOGY] = topology
    app[keys.JOB_STORE] = JobStore(topology.jobs, topology.transcripts)
    app[keys.METRICS] = metrics = GatewayMetrics()
    app[keys.JOB_LIST] = JobListIndex(app[keys.JS], topology.job_list, on_finished=metrics.count_usage)
    app[keys.JOB_LIST_READER] = JobListReader(nc)
    app[keys.OFFERS] = OfferReader(app[keys.JS], topology.workers, settings)
    app[keys.OPENAPI] = openapi.openapi_spec(keys_required=tenancy.keys_required)

    app.router.add_post("/jobs", submit.submit_job, expect_handler=submit.expect_upload)
    app.router.add_get("/jobs", jobs.list_jobs)
    app.router.add_get(f"/jobs/{JOB_ID}", jobs.get_job)
    app.router.add_delete(f"/jobs/{JOB_ID}", jobs.cancel_job)
    app.router.add_get(f"/jobs/{JOB_ID}/transcript", jobs.get_transcript)
    app.router.add_get(f"/jobs/{JOB_ID}/stream", sse.stream_job)
    app.router.add_get("/models", models.list_models)
    app.router.add_post("/v1/audio/transcriptions", openai_routes.transcriptions)
    app.router.add_post("/v1/audio/translations", openai_routes.translations)
    app.router.add_get("/v1/models", openai_models.list_models)
    app.router.add_get("/health", health.health)
    app.router.add_get("/livez", health.livez)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_get("/openapi.json", openapi.openapi_json)
    app.router.add_get("/docs", openapi.docs_page)
    app.router.add_static("/docs/assets", str(openapi.STATIC))
    webpage.add_routes(app)

    app.on_shutdown.append(end_event_streams)
    # Entered in order, left in reverse: components that publish or consume come after the hub.
    app.cleanup_ctx.extend(
        [
            router_consumer_ctx,
            event_hub_ctx,
            webhook_ctx,
            indexer_ctx,
        ]
    )
    return app
