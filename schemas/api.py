"""Bodies of the HTTP API other than the job itself."""

from typing import Any

import msgspec

from schemas.job import Job
from schemas.workers import DiarizerHeartbeat, WorkerHeartbeat


class JobAccepted(msgspec.Struct):
    """Answer to `POST /jobs` (202)."""

    job_id: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every 4xx/5xx answer: what went wrong, in words a client can act on."""

    error: str
    detail: Any = None
    """Data beside the message where the error has some: `{"models": [...]}`, the models on offer, when a job's
    model is not on offer or cannot do its language."""
    request_id: str | None = None
    """The request's id, also in the `X-Request-Id` header and in the gateway's log: quote it when reporting."""


class JobList(msgspec.Struct, kw_only=True):
    jobs: list[Job]
    next_cursor: str | None = None
    """Pass as `cursor` to get the next page; null on the last page."""


class QueueDepth(msgspec.Struct, kw_only=True):
    pending: int
    """Jobs waiting for a worker."""
    in_flight: int
    """Jobs delivered to a worker and not yet finished."""
    oldest_waiting_s: float | None = None
    """Seconds the longest-waiting job has been in its queue; null when none waits."""


class ModelStatus(msgspec.Struct, kw_only=True):
    """One model: on offer (a live worker serves it, or it is declared), or with jobs queued for it."""

    name: str
    on_offer: bool
    """Whether a job for it is accepted now: a live worker serves it, or it is declared."""
    default: bool
    """Whether a job that names no model runs with it."""
    declared: bool
    """Listed in `JETSCRIBE_DECLARED_MODELS`: jobs for it wait while no worker serves it (scaled to zero)."""
    multilingual: bool
    """False for English-only models, which take only English jobs (or jobs that leave the language out)."""
    quantization: str | None
    """As its workers report it: `f16`, `q8_0`, `q5_0`, … (whisper.cpp), `int8`, `f16`, `f32` (CTranslate2); null while
    no live worker serves it."""
    engines: list[str] = []
    """The Whisper engines its live workers run it on: `whispercpp`, or `ctranslate2/` and the compute type
    (`ctranslate2/int8`); empty while no live worker serves it."""
    workers: int
    """Live workers that serve it."""
    slots: int
    """Their slots for it: jobs they run with it at once."""
    busy_slots: int
    queue: QueueDepth


class ModelList(msgspec.Struct, kw_only=True):
    """Answer to `GET /models`."""

    models: list[ModelStatus]
    default_model: str
    """The model of a job that names none."""


class DiarizationStage(msgspec.Struct, kw_only=True):
    """The diarization stage (jobs with `diarize`, after transcription) in `/health`."""

    diarizers: list[DiarizerHeartbeat]
    """The live diarization workers (heartbeats in the `jetscribe_diarizers` bucket)."""
    queue: QueueDepth
    """`pending`: transcribed jobs waiting for a diarization worker; `in_flight`: jobs being diarized. Together, the
    jobs whose status is `diarizing`."""


class Health(msgspec.Struct, kw_only=True):
    status: str
    """`ok`, or `degraded` with the reason in `problems`."""
    nats_connected: bool
    queue: QueueDepth | None
    """Every model's queue together, and jobs not yet routed to a model."""
    workers: list[WorkerHeartbeat]
    models: list[ModelStatus] = []
    diarization: DiarizationStage | None = None
    """The diarization stage; null when NATS did not answer."""
    problems: list[str] = []


class HealthSummary(msgspec.Struct, kw_only=True):
    """`GET /health` for a caller without an API key while keys are configured: only whether the service is up."""

    status: str
    """`ok`, or `degraded`; the reasons, workers and queue need a key."""


class StreamDone(msgspec.Struct, kw_only=True, tag_field="type", tag="done"):
    """Data of the `done` event that ends `GET /jobs/{id}/stream`: the full job, segments included."""

    job: Job
