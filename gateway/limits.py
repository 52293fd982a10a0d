"""Bounds on what one request may take from the gateway: body size, header size, time, event streams.

- Bodies: only `POST /jobs` and the OpenAI-compatible `POST /v1/audio/...` carry a large body (streamed, limited
  by `max_upload_bytes`); any other route refuses a declared body over `MAX_BODY_BYTES` with 413, and
  `client_max_size` bounds what a handler could ever read into memory.
- Headers: the request line and each header are capped by aiohttp's parser (`MAX_LINE_BYTES`,
  `MAX_FIELD_BYTES`, `MAX_HEADERS`); a request over them is answered 400 by the parser itself,
  before the application sees it, so that answer is plain text.
- Time: a connection must send a request's complete headers within `header_timeout_s` of opening
  (or of its previous response), else aiohttp closes it: its keep-alive timer is that deadline
  (`runner_options`). The request was never parsed, so there is no HTTP answer. A route that
  answers with one JSON document gets `request_timeout_s`; past it the client gets 503 with
  `Retry-After`. Uploads and event streams are long by nature and are exempt.
- Uploads: one that sends no bytes for `upload_idle_timeout_s` while the gateway waits for them
  gets 408; one caller (`gateway.callers`) may have `max_uploads_per_caller` in progress at once
  on a gateway, the next gets 429 with `Retry-After`, before any of its body is read.
- Event streams: at most `max_sse_clients` open at once per gateway; the next gets 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from gateway import keys
from gateway.callers import limit_key
from gateway.errors import error_response
from jetscribe.config import Settings, env_name

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY_BYTES: Final = 64 * 1024
"""Largest body any route but `POST /jobs` accepts (none of them reads one today)."""
MAX_LINE_BYTES: Final = 8190
MAX_FIELD_BYTES: Final = 8190
MAX_HEADERS: Final = 100
RETRY_AFTER_S: Final = 5
SSE_SUFFIX: Final = "/stream"
IDLE_CHECKS: Final = 4
"""An idle upload is noticed within a quarter of `upload_idle_timeout_s` (at most 1 s) of its limit."""


class StreamSlots:
    """How many event streams this gateway holds open, against its cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def try_take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1


class UploadSlots:
    """Uploads in progress per caller, against a cap per caller."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def try_take(self, caller: str) -> bool:
        open_now = self._open.get(caller, 0)
        if open_now >= self.limit:
            return False
        self._open[caller] = open_now + 1
        return True

    def give_back(self, caller: str) -> None:
        open_now = self._open[caller] - 1
        if open_now:
            self._open[caller] = open_now
        else:
            del self._open[caller]


STREAM_SLOTS: Final = web.AppKey("stream_slots", StreamSlots)
UPLOAD_SLOTS: Final = web.AppKey("upload_slots", UploadSlots)


def runner_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of the gateway's `web.AppRunner`: the parser's size limits and the header deadline.

    aiohttp's keep-alive timer starts when a connection opens and again after each response, and
    closes the connection if no complete request has arrived when it fires: it is a header-read
    deadline and an idle keep-alive limit at once (aiohttp's own default is 3630 s). The default
    of 20 s is Apache mod_reqtimeout's first header limit, and longer than the 15 s for which an
    aiohttp client (ours included) reuses an idle connection, so the server never closes one that
    such a client is about to send on.
    """
    return {
        "max_line_size": MAX_LINE_BYTES,
        "max_field_size": MAX_FIELD_BYTES,
        "max_headers": MAX_HEADERS,
        "keepalive_timeout": settings.header_timeout_s,
    }


UPLOAD_PATHS: Final = frozenset({"/jobs", "/v1/audio/transcriptions", "/v1/audio/translations"})
"""Routes whose body is audio: `POST /jobs` and the OpenAI-compatible ones (which then wait for their job, bounded
by `openai_wait_s`, holding the caller's upload slot until they answer)."""


def _is_upload(request: web.Request) -> bool:
    return request.method == "POST" and request.path in UPLOAD_PATHS


def _is_stream(request: web.Request) -> bool:
    return request.method == "GET" and request.path.startswith("/jobs/") and request.path.endswith(SSE_SUFFIX)


def _unavailable(message: str) -> web.Response:
    return error_response(503, message, {"Retry-After": str(RETRY_AFTER_S)})


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse oversized bodies, bound the time of ordinary routes and the number of event streams."""
    if _is_upload(request):
        return await _bounded_upload(request, handler)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return error_response(
            413,
            f"{request.method} {request.path} takes no body larger than {MAX_BODY_BYTES} bytes "
            f"(got {request.content_length}); only POST /jobs accepts uploads",
        )
    if _is_stream(request):
        slots = request.app[STREAM_SLOTS]
        if not slots.try_take():
            log.warning("refused an event stream: %d of %d open", slots.open, slots.limit)
            return _unavailable(
                f"this gateway already serves {slots.limit} event streams, its configured maximum: "
                f"retry in {RETRY_AFTER_S} s, or poll GET /jobs/{{id}}"
            )
        try:
            return await handler(request)
        finally:
            slots.give_back()
    timeout_s = request.app[keys.SETTINGS].request_timeout_s
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            return await handler(request)
    except TimeoutError:
        if not deadline.expired():
            raise  # the handler's own timeout (e.g. NATS'), answered by the errors middleware
        log.warning("%s %s took longer than %.1f s", request.method, request.path, timeout_s)
        return _unavailable(
            f"{request.method} {request.path} took longer than {timeout_s:g} s (the message broker may be slow "
            f"or unreachable): retry in {RETRY_AFTER_S} s"
        )


async def _bounded_upload(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the upload handler within the caller's upload cap and the idle-upload limit."""
    uploads = request.app[UPLOAD_SLOTS]
    caller = limit_key(request)
    if not uploads.try_take(caller):
        log.warning("refused an upload from %s: %d in progress", caller, uploads.limit)
        return error_response(
            429,
            f"this caller already has {uploads.limit} uploads in progress on this gateway, the configured maximum "
            f"({env_name('max_uploads_per_caller')}): retry in {RETRY_AFTER_S} s, once one of them has finished",
            {"Retry-After": str(RETRY_AFTER_S)},
        )
    try:
        return await _idle_limited(request, handler, request.app[keys.SETTINGS].upload_idle_timeout_s)
    finally:
        uploads.give_back(caller)


async def _idle_limited(request: web.Request, handler: Handler, idle_s: float) -> web.StreamResponse:
    """`handler(request)`, cut off with 408 once the client has sent no body bytes for `idle_s` seconds.

    The clock runs only while the gateway is ready for more: when its read buffer is full (the
    object store acknowledging slowly, say) aiohttp pauses the socket, and that pause is the
    gateway's doing, not the client's. It stops for good at the end of the body.
    """
    loop = asyncio.get_running_loop()
    body = request.content
    transport = request.transport
    deadline = asyncio.timeout(idle_s)

    async def watch() -> None:
        seen = body.total_bytes
        while not body.is_eof():
            await asyncio.sleep(min(1.0, idle_s / IDLE_CHECKS))
            paused = transport is not None and not transport.is_reading()
            if body.total_bytes != seen or paused:
                seen = body.total_bytes
                deadline.reschedule(loop.time() + idle_s)
        deadline.reschedule(None)

    watcher = asyncio.create_task(watch(), name=f"idle watch {request.method} {request.path}")
    try:
        async with deadline:
            return await handler(request)
    except TimeoutError:
        if not deadline.expired():
            raise  # the handler's own timeout, answered by the errors middleware
        log.warning("%s %s: no upload bytes for %g s, cut off", request.method, request.path, idle_s)
        response = error_response(
            408,
            f"the upload sent no data for {idle_s:g} s ({env_name('upload_idle_timeout_s')}) and was stopped; "
            f"nothing was kept: send the whole body without pausing",
        )
        response.force_close()
        return response
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
