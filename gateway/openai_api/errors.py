"""OpenAI's error body on the OpenAI-compatible routes: `{"error": {"message", "type", "param", "code"}}`.

`OpenAIError` (raised by these routes' own checks) carries the field at fault. Every other refusal on `/v1/` (an
API key missing, the body too large, the queue full, a bad decoding option from the shared submit path) is first
answered in the gateway's own shape by the middleware that raises it; `openai_errors_middleware` reshapes those
answers, keeping status and headers except that 422 becomes 400, as OpenAI answers a bad value. The `type` follows
the status the way OpenAI's API uses it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec
from aiohttp import web

from gateway.errors import OpenAIError
from schemas import encode
from schemas.api import ErrorBody
from schemas.openai_api import OpenAIErrorBody, OpenAIErrorDetail

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFIX: Final = "/v1/"
_FIELD: Final = re.compile(r"`([\w\[\]]+)`")
"""The first field a refusal names (`option `temperature`: …`, `the form has no `file` part`)."""
_gateway_error: Final = msgspec.json.Decoder(ErrorBody)
DROPPED_HEADERS: Final = frozenset({"content-type", "content-length"})


def error_type(status: int) -> str:
    """OpenAI's `type` for a status: `rate_limit_error` (429), `server_error` (5xx), else `invalid_request_error`."""
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def _default_code(status: int) -> str | None:
    return {401: "invalid_api_key", 413: "file_too_large", 429: "rate_limit_exceeded", 503: "service_unavailable"}.get(
        status
    )


def openai_error_response(error: OpenAIError, *, request_id: str | None = None) -> web.Response:
    """The answer to `error`, with its headers and the request's id in `X-Request-Id`."""
    body = OpenAIErrorBody(
        error=OpenAIErrorDetail(
            message=error.message,
            type=error_type(error.status),
            param=error.param,
            code=error.code or _default_code(error.status),
        )
    )
    headers = dict(error.headers)
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return web.Response(status=error.status, body=encode(body), content_type="application/json", headers=headers)


def _reshaped(response: web.Response) -> web.Response:
    """The gateway's own error answer in OpenAI's shape; any other answer as it is."""
    if response.status < 400 or not isinstance(response.body, bytes):
        return response
    try:
        native = _gateway_error.decode(response.body)
    except msgspec.DecodeError:
        return response  # already OpenAI's shape, or not an error body of the gateway
    named = _FIELD.search(native.error) if response.status in (400, 422) else None
    headers = {k: v for k, v in response.headers.items() if k.lower() not in DROPPED_HEADERS}
    error = OpenAIError(
        400 if response.status == 422 else response.status,
        native.error,
        param=named[1] if named else None,
        code="invalid_value" if response.status == 422 else None,
        headers=headers,
    )
    return openai_error_response(error)


@web.middleware
async def openai_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every refusal on `/v1/` OpenAI's error body."""
    response = await handler(request)
    if not request.path.startswith(PREFIX) or response.prepared or not isinstance(response, web.Response):
        return response
    return _reshaped(response)
