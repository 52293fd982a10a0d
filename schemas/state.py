"""The authoritative job state kept in the `jetscribe_jobs` KV bucket, one key per job id.

Every transition is a compare-and-set on the entry's revision. Segments live in the transcripts
object store (`transcript_object`), so the record stays small however long the audio is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from schemas.job import TERMINAL_STATUSES, Job, JobStatus, JobTimings, Segment, SpeakerTime, WebhookState
from schemas.names import DEFAULT_TENANT
from schemas.submit import DecodeOptions, JobMessage, Task


class JobRecord(msgspec.Struct, kw_only=True):
    id: str
    status: JobStatus
    task: Task
    language: str | None
    """As requested; None means auto-detect."""
    options: DecodeOptions = msgspec.field(default_factory=DecodeOptions)
    audio_object: str | None = None
    audio_url: str | None = None
    webhook_url: str | None = None
    detected_language: str | None = None
    language_probability: float | None = None
    """Whisper's probability of `detected_language` (see `Job.language_probability`)."""
    duration_secs: float | None = None
    progress: int = 0
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    worker_id: str | None = None
    model: str | None = None
    """The requested model (the default one filled in) while queued; the model that ran it from its start on."""
    engine: Literal["whispercpp", "ctranslate2"] | None = None
    """The Whisper engine that runs or ran it; None until a worker starts it."""
    compute_type: str | None = None
    """What the CTranslate2 engine computed in (`int8`, `float16`, …); None with whisper.cpp."""
    attempts: int = 0
    cancel_requested: bool = False
    transcript_object: str | None = None
    webhook: WebhookState | None = None
    timings: JobTimings | None = None
    filename: str | None = None
    """The uploaded file's name (or the last part of `audio_url`) as the gateway received it."""
    tenant: str = DEFAULT_TENANT
    """Whose job this is (the job message's `tenant`); records written before tenants existed are `default`'s."""
    speakers: list[SpeakerTime] | None = None
    """The speakers the diarization stage found (jobs with `diarize`, once done)."""

    @classmethod
    def queued(cls, message: JobMessage, *, created_at: datetime, filename: str | None = None) -> JobRecord:
        """The state of a job just submitted: by the gateway, or by a producer straight to NATS."""
        return cls(
            id=message.job_id,
            status="queued",
            task=message.task,
            language=message.language,
            options=message.options,
            audio_object=message.audio_object,
            audio_url=message.audio_url,
            webhook_url=message.webhook_url,
            model=message.model,
            webhook=WebhookState(url=message.webhook_url) if message.webhook_url else None,
            created_at=created_at,
            filename=filename,
            tenant=message.tenant or DEFAULT_TENANT,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_job(self, segments: list[Segment] | None = None) -> Job:
        """The API view of this record, with the transcript's segments when given."""
        return Job(
            id=self.id,
            status=self.status,
            language=self.detected_language or self.language,
            task=self.task,
            duration_secs=self.duration_secs,
            progress=self.progress,
            segments=segments or [],
            error=self.error,
            created_at=self.created_at,
            completed_at=self.completed_at,
            started_at=self.started_at,
            model=self.model,
            engine=self.engine,
            compute_type=self.compute_type,
            webhook=self.webhook,
            timings=self.timings,
            filename=self.filename,
            language_probability=self.language_probability,
            tenant=self.tenant,
            speakers=self.speakers,
        )


class IdempotencyRecord(msgspec.Struct, kw_only=True):
    """What the gateway remembers of one `Idempotency-Key`, in `jetscribe_idempotency` under a digest of the
    caller's scope and the key: the first request's fingerprint, its state, and the job it made.

    `in_flight` while the first request streams its upload (the reservation is a lease, renewed while the
    upload lasts, so a gateway that died mid-upload frees the key within `lease_until`); `done` once the job
    is queued. A replay with the same fingerprint gets the same job; with another fingerprint, 422; while
    in flight, 409.
    """

    state: Literal["in_flight", "done"]
    fingerprint: str | None = None
    """SHA-256 (hex) of the request: its fields as the gateway read them and the SHA-256 of its audio."""
    job_id: str | None = None
    created_at: datetime
    lease_until: datetime | None = None
    """An `in_flight` reservation not renewed by then is abandoned: another request may take the key over."""
