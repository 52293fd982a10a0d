"""The job message a producer publishes on its model's subject or on `JOBS_SUBJECT` (from the gateway or straight
to NATS)."""

from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from schemas.languages import check_language
from schemas.names import JOB_ID_PATTERN, MODEL_NAME_PATTERN, MODEL_NAME_RULE, model_token

SCHEMA_VERSION: Final = 1

Task = Literal["transcribe", "translate"]
JobId = Annotated[
    str,
    msgspec.Meta(
        pattern=JOB_ID_PATTERN,
        description="1–64 characters of A–Z, a–z, 0–9, `_` and `-` (it becomes part of NATS subjects and keys)",
    ),
]
ModelName = Annotated[str, msgspec.Meta(pattern=MODEL_NAME_PATTERN, description=MODEL_NAME_RULE)]
"""A Whisper model's name as workers serve it: `base`, `tiny.en`, `large-v3-turbo`, `base-q5_0`."""
HttpUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/$.?#][^\s]*$", max_length=2048)]


class DecodeOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Per-job decoder settings; every field has the service default."""

    beam_size: Annotated[int, msgspec.Meta(ge=1, le=16)] = 5
    """Beam-search width; 1 means greedy decoding."""
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    initial_prompt: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    """Text that primes the decoder: names, spelling, style."""
    word_timestamps: bool = True
    """Fill each segment's `words` with per-word timings and probabilities."""


class JobMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A transcription job. Exactly one of `audio_object` and `audio_url` says where the audio is.

    Publish it on its model's subject, `jetscribe.jobs.<model token>.default` (`schemas.names.model_jobs_subject`),
    or on `jetscribe.jobs.submit`, from where it is routed to `model` (or the service's default model), with
    header `Nats-Msg-Id: <job_id>` so a retried publish is not queued twice.
    """

    job_id: JobId
    audio_object: str | None = None
    """Name of an object in the `jetscribe_audio` object-store bucket."""
    audio_url: HttpUrl | None = None
    """An http(s) URL the worker downloads the audio from."""
    language: str | None = None
    """ISO 639-1 code of the spoken language; null or absent means auto-detect."""
    task: Task = "transcribe"
    webhook_url: HttpUrl | None = None
    model: ModelName | None = None
    """The Whisper model to run the job with; null or absent means the service's default model
    (`JETSCRIBE_DEFAULT_MODEL`)."""
    options: DecodeOptions = msgspec.field(default_factory=DecodeOptions)
    submitted_at: datetime | None = None
    """When the producer submitted the job (UTC); the worker uses its own clock when absent."""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if (self.audio_object is None) == (self.audio_url is None):
            raise ValueError("exactly one of `audio_object` and `audio_url` must be given")
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported; this service understands {SCHEMA_VERSION}"
            )
        check_language(self.language)
        if self.model is not None:
            model_token(self.model)
