"""Bodies of the OpenAI-compatible routes (`/v1/audio/transcriptions`, `/v1/audio/translations`, `/v1/models`).

Field for field OpenAI's published shapes (the API reference, and the `openai` Python SDK's types under
`openai/types/audio/`), so that OpenAI's clients read them unchanged. Optional members absent from an answer
(`words`, `logprobs`) are left out rather than sent as null, as OpenAI does.
"""

from typing import Literal

import msgspec


class OpenAIErrorDetail(msgspec.Struct, kw_only=True):
    message: str
    """What went wrong and what to change; names the job id where a job exists."""
    type: str
    """`invalid_request_error` (4xx), `rate_limit_error` (429) or `server_error` (5xx)."""
    param: str | None = None
    """The request field at fault, by OpenAI's name, when one is."""
    code: str | None = None
    """A stable machine-readable reason (`invalid_value`, `model_not_found`, `invalid_api_key`, `job_failed`, …)."""


class OpenAIErrorBody(msgspec.Struct, kw_only=True):
    """Every 4xx/5xx answer of the OpenAI-compatible routes: OpenAI's error body."""

    error: OpenAIErrorDetail


class Logprob(msgspec.Struct, kw_only=True):
    """One word of the transcript with its log probability (`include[]=logprobs`).

    OpenAI gives one entry per token; whisper.cpp's token texts are BPE pieces without a reliable byte
    boundary, so jetscribe gives one per word: `logprob` is the natural log of the word's probability.
    """

    token: str
    logprob: float
    bytes: list[int]
    """The UTF-8 bytes of `token`."""


class DurationUsage(msgspec.Struct, kw_only=True):
    """What the request used: seconds of audio (OpenAI bills `whisper-1` so)."""

    type: Literal["duration"] = "duration"
    seconds: float


class Transcription(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`response_format=json`."""

    text: str
    logprobs: list[Logprob] | msgspec.UnsetType = msgspec.UNSET
    usage: DurationUsage | msgspec.UnsetType = msgspec.UNSET


class VerboseSegment(msgspec.Struct, kw_only=True):
    """A segment of `verbose_json`. Detail that whisper.cpp did not report (transcripts written before it was
    kept) is null."""

    id: int
    seek: int
    """The segment's start in 10 ms frames (Whisper's unit for `seek`). OpenAI Whisper gives the start of the 30 s
    window the segment was decoded in; whisper.cpp does not report its windows, so the segment's own start is
    given."""
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float | None
    avg_logprob: float | None
    compression_ratio: float | None
    no_speech_prob: float | None


class VerboseWord(msgspec.Struct, kw_only=True):
    word: str
    start: float
    end: float


class VerboseTranscription(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`response_format=verbose_json`."""

    task: Literal["transcribe", "translate"]
    language: str
    """The language's English name in lower case (`english`), as OpenAI spells it; empty when none was found."""
    duration: float
    """Seconds of audio."""
    text: str
    segments: list[VerboseSegment]
    words: list[VerboseWord] | msgspec.UnsetType = msgspec.UNSET
    """With `timestamp_granularities[]=word` only."""
    usage: DurationUsage | msgspec.UnsetType = msgspec.UNSET


class DiarizedSegment(msgspec.Struct, kw_only=True, tag_field="type", tag="transcript.text.segment"):
    """One turn of `diarized_json` (OpenAI's `TranscriptionDiarizedSegment`): a Whisper segment, or the part of one
    that one speaker said when the speaker changes inside it."""

    id: str
    """`seg_0`, `seg_1`, … in time order."""
    start: float
    end: float
    text: str
    speaker: str
    """`A`, `B`, … in the order the speakers are first heard (OpenAI's labels without known speakers); the job
    record's `SPEAKER_00`, `SPEAKER_01`, … in the same order."""


class DiarizedTranscription(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`response_format=diarized_json` (OpenAI's `TranscriptionDiarized`)."""

    task: Literal["transcribe"]
    duration: float
    """Seconds of audio."""
    text: str
    segments: list[DiarizedSegment]
    usage: DurationUsage | msgspec.UnsetType = msgspec.UNSET


class TextDeltaEvent(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type", tag="transcript.text.delta"):
    """`stream=true`: one per segment, as the worker finishes it (`type`: `transcript.text.delta`)."""

    delta: str
    logprobs: list[Logprob] | msgspec.UnsetType = msgspec.UNSET


class TextDoneEvent(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type", tag="transcript.text.done"):
    """`stream=true`: the last event, with the whole text, the deltas joined (`type`: `transcript.text.done`)."""

    text: str
    logprobs: list[Logprob] | msgspec.UnsetType = msgspec.UNSET


class OpenAIModel(msgspec.Struct, kw_only=True):
    """One entry of `GET /v1/models`, in OpenAI's shape."""

    id: str
    object: Literal["model"] = "model"
    created: int
    """Unix seconds; when the earliest live worker serving it started."""
    owned_by: str


class OpenAIModelList(msgspec.Struct, kw_only=True):
    """`GET /v1/models`, in OpenAI's list shape."""

    object: Literal["list"] = "list"
    data: list[OpenAIModel]
