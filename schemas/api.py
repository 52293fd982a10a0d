"""Bodies of the HTTP API other than the job itself."""

from typing import Any

import msgspec

from schemas.job import Job
from schemas.workers import WorkerHeartbeat


class JobAccepted(msgspec.Struct):
    """Answer to `POST /jobs` (202)."""

    job_id: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every 4xx/5xx answer: what went wrong, in words a client can act on."""

    error: str
    detail: Any = None
    request_id: str | None = None
    """The request's id, also in the `X-Request-Id` header and in the gateway's log: quote it when reporting."""


class JobList(msgspec.Struct, kw_only=True):
    jobs: list[Job]
    next_cursor: str | None = None
    """Pass as `cursor` to get the next page; null on the last page."""


class QueueDepth(msgspec.Struct, kw_only=True):
    pending: int
    in_flight: int


class Health(msgspec.Struct, kw_only=True):
    status: str
    """`ok`, or `degraded` with the reason in `problems`."""
    nats_connected: bool
    queue: QueueDepth | None
    workers: list[WorkerHeartbeat]
    problems: list[str] = []


class HealthSummary(msgspec.Struct, kw_only=True):
    """`GET /health` for a caller without an API key while keys are configured: only whether the service is up."""

    status: str
    """`ok`, or `degraded`; the reasons, workers and queue need a key."""


class StreamDone(msgspec.Struct, kw_only=True, tag_field="type", tag="done"):
    """Data of the `done` event that ends `GET /jobs/{id}/stream`: the full job, segments included."""

    job: Job
