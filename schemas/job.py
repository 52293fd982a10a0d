"""The job as the HTTP API returns it (DESIGN.md's job JSON, field for field, plus additions)."""

from datetime import datetime
from typing import Literal

import msgspec

from schemas.names import DEFAULT_TENANT
from schemas.submit import Task

JobStatus = Literal["queued", "running", "diarizing", "done", "failed", "cancelled"]
"""`diarizing`: transcribed, waiting for or in the diarization stage (jobs with the `diarize` option only)."""
TERMINAL_STATUSES: frozenset[JobStatus] = frozenset({"done", "failed", "cancelled"})


class Word(msgspec.Struct, frozen=True):
    start: float
    """Seconds from the start of the audio."""
    end: float
    word: str
    probability: float
    speaker: str | None = None
    """Who said it (`SPEAKER_00`, …) in a job with `diarize`; null otherwise."""


class Segment(msgspec.Struct, frozen=True):
    """A stretch of transcribed speech, with the detail of OpenAI's `verbose_json` segments.

    The detail fields are optional: transcripts written before they existed have none.
    """

    index: int
    start: float
    """Seconds from the start of the audio."""
    end: float
    text: str
    words: list[Word] = []
    avg_logprob: float | None = None
    """Mean log probability of the segment's tokens (text and time stamps)."""
    no_speech_prob: float | None = None
    """Whisper's probability that the 30 s window this segment came from holds no speech."""
    compression_ratio: float | None = None
    """Bytes of the text over bytes of its zlib compression: above about 2.4, text that repeats itself."""
    temperature: float | None = None
    """Temperature of the decoding this segment came from: the job's `temperature`, or higher after a fallback."""
    tokens: list[int] = []
    """Whisper token ids of the segment, time-stamp tokens included."""
    speaker: str | None = None
    """Who spoke it (`SPEAKER_00`, `SPEAKER_01`, …, numbered in the order first heard) in a job with `diarize`;
    null otherwise. A Whisper segment in which the speaker changes is split there, so one segment has one speaker."""


class SpeakerTime(msgspec.Struct, frozen=True, kw_only=True):
    """One speaker of a diarized job and how much they spoke."""

    speaker: str
    """`SPEAKER_00`, `SPEAKER_01`, …: the label on that speaker's segments and words."""
    speaking_time_s: float
    """Total seconds of the speaker's turns."""
    turns: int
    """Stretches of speech by this speaker without another speaker in between."""


class WebhookState(msgspec.Struct, kw_only=True):
    """How delivery of the job's webhook is going."""

    url: str
    attempts: int = 0
    last_status: int | None = None
    """HTTP status of the last attempt, if it got an answer."""
    last_error: str | None = None
    delivered_at: datetime | None = None
    exhausted: bool = False


class JobTimings(msgspec.Struct, kw_only=True):
    """Seconds each stage of a finished job took on its worker."""

    fetch_s: float
    """Getting the audio from the object store or its URL."""
    decode_s: float
    """ffmpeg decoding to 16 kHz mono."""
    wait_s: float
    """Waiting for the engine while the slot's previous job finished (its audio was ready)."""
    transcribe_s: float
    """Whisper itself."""


class Job(msgspec.Struct, kw_only=True):
    """One transcription job. Fields may be added; existing ones never change meaning."""

    id: str
    status: JobStatus
    language: str | None
    """The requested language, or the detected one once the worker knows it; null when the audio holds no speech
    and none was requested."""
    task: Task
    duration_secs: float | None = None
    progress: int = 0
    """0–100."""
    segments: list[Segment] = []
    error: str | None = None
    created_at: datetime
    completed_at: datetime | None = None
    started_at: datetime | None = None
    model: str | None = None
    """The Whisper model that ran the job, e.g. `base`; while it is queued, the one it will run with (null for a
    job sent straight to NATS without `model`, until a worker takes it)."""
    engine: Literal["whispercpp", "ctranslate2"] | None = None
    """The Whisper engine that runs or ran the job (`JETSCRIBE_ENGINE` of its worker); null until a worker starts
    it."""
    compute_type: str | None = None
    """What the CTranslate2 engine computed in (`int8`, `int8_float16`, `float16`, `float32`, …); null with
    whisper.cpp, whose model file holds its weights' type."""
    webhook: WebhookState | None = None
    timings: JobTimings | None = None
    filename: str | None = None
    """The uploaded file's name (or the last part of `audio_url`), for people; null for jobs sent straight to NATS."""
    language_probability: float | None = None
    """Whisper's probability of the detected `language`, measured on the first 30 s of speech; null when the
    language was given, or no speech was found."""
    tenant: str = DEFAULT_TENANT
    """The tenant the job belongs to (`default` while API keys are off)."""
    speakers: list[SpeakerTime] | None = None
    """The speakers found, in label order, once a job with `diarize` is done; null for other jobs."""
