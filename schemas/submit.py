"""The job message a producer publishes on its model's subject or on `JOBS_SUBJECT` (from the gateway or straight
to NATS)."""

from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from schemas.languages import check_language
from schemas.names import JOB_ID_PATTERN, MODEL_NAME_PATTERN, MODEL_NAME_RULE, TENANT_PATTERN, model_token

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

TenantName = Annotated[
    str,
    msgspec.Meta(
        pattern=TENANT_PATTERN,
        description="1–64 characters of A–Z, a–z, 0–9, `_` and `-` (it becomes part of NATS subjects)",
    ),
]
HttpUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/$.?#][^\s]*$", max_length=2048)]


MAX_SPEAKERS: Final = 32
"""The most speakers a job may ask for (the diarizer's limit, `diarizer.options.LIMIT`)."""
SpeakerNumber = Annotated[int, msgspec.Meta(ge=1, le=MAX_SPEAKERS)]

LanguageCode = Annotated[str, msgspec.Meta(min_length=2, max_length=3, pattern="^[a-z]{2,3}$")]


class DecodeOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Per-job decoder settings; every field has the service default.

    Defaults are left out of the encoded message, so a job that sets none of the newer options reads the same
    to a worker of an earlier release.
    """

    beam_size: Annotated[int, msgspec.Meta(ge=1, le=16)] = 5
    """Beam-search width; 1 means greedy decoding."""
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    """Sampling temperature of the first attempt at each 30 s window; 0 decodes deterministically."""
    initial_prompt: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    """Text that primes the decoder: names, spelling, style."""
    word_timestamps: bool = True
    """Fill each segment's `words` with per-word timings and probabilities."""

    # Voice activity detection (Silero VAD): only speech reaches Whisper; times stay on the audio's own timeline.
    vad: bool | None = None
    """Detect speech first and transcribe only that; null means the worker's setting (`JETSCRIBE_VAD`, on)."""
    vad_threshold: Annotated[float, msgspec.Meta(ge=0.01, le=0.99)] = 0.5
    """Speech probability (Silero's, per 32 ms frame) from which a frame counts as speech."""
    vad_min_speech_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 250
    """Shorter bursts of speech are ignored (clicks, coughs)."""
    vad_min_silence_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 500
    """A pause must last this long to end a stretch of speech (500 ms: shorter cut inside sentences for no gain;
    BENCHMARKS.md, "Transcript quality")."""
    vad_speech_pad_ms: Annotated[int, msgspec.Meta(ge=0, le=2_000)] = 200
    """Audio kept on each side of a stretch of speech, so first and last words are not clipped (200 ms measured
    best: 30 ms clipped word onsets, 400 ms started words early; BENCHMARKS.md, "Transcript quality")."""

    # Guards against text that is not in the audio, and Whisper's temperature fallback.
    temperature_increment: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.2
    """A window whose decoding fails the checks below is decoded again at a temperature this much higher, up to 1.0;
    0 turns the fallback off."""
    entropy_threshold: Annotated[float, msgspec.Meta(ge=0.0, le=10.0)] = 2.4
    """Fallback when the entropy (nats) of the last 32 tokens of a window's text is below this: a repetition loop
    (whisper.cpp's stand-in for Whisper's compression-ratio test inside the decoder)."""
    logprob_threshold: Annotated[float, msgspec.Meta(ge=-20.0, le=0.0)] = -1.0
    """Fallback when a window's average token log probability is below this (unless the window is silent)."""
    no_speech_threshold: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.6
    """A window whose no-speech probability exceeds this, and whose average log probability is below
    `logprob_threshold`, is taken as silence: it yields no segment."""
    compression_ratio_threshold: Annotated[float, msgspec.Meta(ge=1.0, le=100.0)] = 2.4
    """A segment whose text compresses (zlib) by more than this after the fallback is a loop: its repetitions are
    dropped, keeping the first."""
    suppress_non_speech: bool = True
    """Never write non-speech tokens: bracketed annotations such as `[BLANK_AUDIO]`, music symbols (Whisper's
    `suppress_tokens=-1`)."""

    # What to listen to.
    languages: Annotated[tuple[LanguageCode, ...], msgspec.Meta(min_length=1, max_length=100)] | None = None
    """When the language is detected, choose only among these ISO 639-1 codes; null allows every language."""
    audio_stream: Annotated[int, msgspec.Meta(ge=0, le=63)] | None = None
    """Which audio stream of the file to transcribe, counting audio streams from 0; null means the one ffmpeg
    chooses (the container's default stream)."""

    # Speaker diarization: a stage of its own after transcription (docs/diarization.md).
    diarize: bool = False
    """Label every segment and word with its speaker (`SPEAKER_00`, …); the job passes through status `diarizing`
    after transcription."""
    num_speakers: SpeakerNumber | None = None
    """The exact number of speakers, when known; null estimates it (needs `diarize`)."""
    min_speakers: SpeakerNumber | None = None
    """The fewest speakers to look for (needs `diarize`)."""
    max_speakers: SpeakerNumber | None = None
    """The most speakers to look for; null means up to 8 (needs `diarize`)."""

    def __post_init__(self) -> None:
        try:
            for language in self.languages or ():
                check_language(language)
        except ValueError as exc:
            raise ValueError(f"`languages`: {exc}") from None
        self._check_speakers()

    def _check_speakers(self) -> None:
        counts = {
            "num_speakers": self.num_speakers,
            "min_speakers": self.min_speakers,
            "max_speakers": self.max_speakers,
        }
        given = [name for name, value in counts.items() if value is not None]
        if given and not self.diarize:
            raise ValueError(f"`{given[0]}`: speaker counts apply to diarization only; set `diarize` to true")
        low, high = self.min_speakers, self.max_speakers
        if low is not None and high is not None and low > high:
            raise ValueError(f"`min_speakers`: {low} is more than `max_speakers` ({high})")
        if self.num_speakers is not None and not (low or 1) <= self.num_speakers <= (high or MAX_SPEAKERS):
            raise ValueError(
                f"`num_speakers`: {self.num_speakers} lies outside `min_speakers`..`max_speakers` "
                f"({low or 1}..{high or MAX_SPEAKERS}); give `num_speakers` alone, or bounds that contain it"
            )


class JobMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A transcription job. Exactly one of `audio_object` and `audio_url` says where the audio is.

    Publish it on its model's subject, `jetscribe.jobs.<model token>.<tenant>` (`schemas.names.model_jobs_subject`),
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
    tenant: TenantName | None = None
    """Whose job this is: only that tenant's API keys (and admin keys) see it over HTTP. Null or absent means
    the default tenant, `default`."""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if (self.audio_object is None) == (self.audio_url is None):
            raise ValueError("exactly one of `audio_object` and `audio_url` must be given")
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported; this service understands {SCHEMA_VERSION}"
            )
        check_language(self.language)
        if self.language is not None and self.options.languages and self.language not in self.options.languages:
            raise ValueError(
                f"language {self.language!r} is not among the allowed `languages` {list(self.options.languages)}: "
                "give one of them, or leave `language` out to detect it among them"
            )
        if self.model is not None:
            model_token(self.model)


class DiarizationMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A transcribed job waiting for the diarization stage, published by the whisper worker on
    `jetscribe.diarize.<tenant>` (`schemas.names.diarize_subject`) with `Nats-Msg-Id: <job_id>.diarize`.

    The audio (its object is kept until this stage ends) and the options come with the job message as it was
    submitted; the transcript to label is the object `transcript_object` in `jetscribe_transcripts`.
    """

    job: JobMessage
    transcript_object: str
    """The Whisper transcript (JSON list of segments), without speakers."""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported; this service understands {SCHEMA_VERSION}"
            )
        if not self.job.options.diarize:
            raise ValueError("the job does not ask for `diarize`")
