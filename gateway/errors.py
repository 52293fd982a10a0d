"""Errors the gateway answers with; each carries its HTTP status and a message a client can act on.

GatewayError (JetscribeError)
├── BadRequestError        400  the request is malformed (no `audio` part, empty audio, bad field)
├── UnauthorizedError      401  a configured API key is missing or wrong
├── ForbiddenError         403  the key may not do this (list another tenant's jobs without being an admin)
├── ResourceNotFoundError  404  no such job, transcript or route
├── StateConflictError     409  the job is in the wrong state for this request
├── PayloadTooLargeError   413  the upload exceeds `max_upload_bytes`
├── UnsupportedMediaError  415  the body is not multipart/form-data
├── UnprocessableError     422  a field has a value the service does not accept
│   └── ModelUnavailableError   no live worker serves the model (nor is it declared), or it cannot do the language
├── QueueFullError         429  the jobs queue, or the tenant's share of it, is full; carries `retry_after_s`
└── UnavailableError       503  NATS cannot be reached
OpenAIError (JetscribeError)  any  a refusal of the OpenAI-compatible routes, answered in OpenAI's error shape
                                    with the request field at fault (`gateway.openai_api.errors`)
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from jetscribe.errors import JetscribeError
from schemas import encode
from schemas.api import ErrorBody


class GatewayError(JetscribeError):
    """An error answered to the client as `{"error": message}` with `status`."""

    status: ClassVar[int] = 500
    detail: Any = None
    """Data a client can act on beside the message (ErrorBody's `detail`)."""

    @property
    def message(self) -> str:
        return str(self)


class BadRequestError(GatewayError):
    status = 400


class UnauthorizedError(GatewayError):
    status = 401


class ForbiddenError(GatewayError):
    status = 403


class ResourceNotFoundError(GatewayError):
    status = 404


class StateConflictError(GatewayError):
    status = 409


class PayloadTooLargeError(GatewayError):
    status = 413


class UnsupportedMediaError(GatewayError):
    status = 415


class UnprocessableError(GatewayError):
    status = 422


class ModelUnavailableError(UnprocessableError):
    """The job's model is not on offer, or cannot transcribe its language; `detail` lists the models on offer."""

    def __init__(self, message: str, *, on_offer: list[str]) -> None:
        super().__init__(message)
        self.detail = {"models": on_offer}


class QueueFullError(GatewayError):
    status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnavailableError(GatewayError):
    status = 503


def error_response(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    request_id: str | None = None,
    detail: Any = None,
) -> web.Response:
    """The JSON answer `{"error": message}` every error of the API gets."""
    body = ErrorBody(error=message, detail=detail, request_id=request_id)
    return web.Response(status=status, body=encode(body), content_type="application/json", headers=headers)


class OpenAIError(JetscribeError):
    """A refusal of the OpenAI-compatible routes: `{"error": {"message", "type", "param", "code"}}` with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    @property
    def message(self) -> str:
        return str(self)
