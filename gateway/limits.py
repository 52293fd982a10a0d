"""Bounds on what one request may take from the gateway: body size, header size, time, event streams.

- Bodies: only `POST /jobs` carries a large body (streamed, limited by `max_upload_bytes`); any
  other route refuses a declared body over `MAX_BODY_BYTES` with 413, and `client_max_size` bounds
  what a handler could ever read into memory.
- Headers: the request line and each header are capped by aiohttp's parser (`MAX_LINE_BYTES`,
  `MAX_FIELD_BYTES`, `MAX_HEADERS`); a request over them is answered 400 by the parser itself,
  before the application sees it, so that answer is plain text.
- Time: a route that answers with one JSON document gets `request_timeout_s`; past it the client
  gets 503 with `Retry-After`. Uploads and event streams are long by nature and are exempt.
- Event streams: at most `max_sse_clients` open at once per gateway; the next gets 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from gateway import keys
from gateway.errors import error_response

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY_BYTES: Final = 64 * 1024
"""Largest body any route but `POST /jobs` accepts (none of them reads one today)."""
MAX_LINE_BYTES: Final = 8190
MAX_FIELD_BYTES: Final = 8190
MAX_HEADERS: Final = 100
RETRY_AFTER_S: Final = 5
SSE_SUFFIX: Final = "/stream"


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


STREAM_SLOTS: Final = web.AppKey("stream_slots", StreamSlots)


def _is_upload(request: web.Request) -> bool:
    return request.method == "POST" and request.path == "/jobs"


def _is_stream(request: web.Request) -> bool:
    return request.method == "GET" and request.path.startswith("/jobs/") and request.path.endswith(SSE_SUFFIX)


def _unavailable(message: str) -> web.Response:
    return error_response(503, message, {"Retry-After": str(RETRY_AFTER_S)})


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse oversized bodies, bound the time of ordinary routes and the number of event streams."""
    if _is_upload(request):
        return await handler(request)
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
