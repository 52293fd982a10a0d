"""The fields of OpenAI's transcription and translation forms, read into a jetscribe job.

| OpenAI field                       | becomes                                                               |
|------------------------------------|-----------------------------------------------------------------------|
| `file`                             | the job's audio (the `audio` part of `POST /jobs`)                    |
| `model`                            | checked by `models.served_model`                                      |
| `language`                         | `language` (ISO 639-1)                                                |
| `prompt`                           | option `initial_prompt`                                               |
| `temperature`                      | option `temperature` (0–1)                                            |
| `timestamp_granularities[]`        | `word` turns on option `word_timestamps`; `segment` is always given   |
| `chunking_strategy`                | `auto`: option `vad` on; `server_vad` object: `vad` with `threshold` → |
|                                    | `vad_threshold`, `silence_duration_ms` → `vad_min_silence_ms`,        |
|                                    | `prefix_padding_ms` → `vad_speech_pad_ms`; absent: the service default |
| `languages[]`                      | option `languages`                                                    |
| `include[]=logprobs`               | per-word log probabilities in `json` and stream events                |
| `response_format`, `stream`        | how the answer is written; `diarized_json` also turns on option       |
|                                    | `diarize` (transcriptions only, not streamed)                         |

Every decoding option of `POST /jobs` may be sent too, by its own name (the SDK's `extra_body`), the speaker
counts `num_speakers`, `min_speakers`, `max_speakers` among them. `known_speaker_names[]` and
`known_speaker_references[]` (OpenAI's naming of speakers from 2–10 s reference clips) are refused with 400: the
diarization stage labels voices it clusters and does not match them against reference audio, so a name could not
be given to the right voice (docs/diarization.md). Other unknown fields are ignored, as OpenAI does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import msgspec

from gateway import options
from gateway.errors import OpenAIError, UnprocessableError
from gateway.openai_api.models import served_model
from gateway.submit import FormShape, Submission, parse_language
from jetscribe.offer import ModelOffer
from schemas import DecodeOptions, Task

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"]
RESPONSE_FORMATS: Final[tuple[str, ...]] = get_args(ResponseFormat)
DIARIZED: Final = "diarized_json"
TRANSLATION_FORMATS: Final = tuple(name for name in RESPONSE_FORMATS if name != DIARIZED)
"""OpenAI's translations offer no `diarized_json`."""
GRANULARITIES: Final = ("word", "segment")
INCLUDES: Final = ("logprobs",)
DIARIZATION_FIELDS: Final = ("known_speaker_names[]", "known_speaker_references[]")
CHUNKING: Final = "chunking_strategy"
SERVER_VAD_OPTIONS: Final = {
    "threshold": "vad_threshold",
    "silence_duration_ms": "vad_min_silence_ms",
    "prefix_padding_ms": "vad_speech_pad_ms",
}
"""OpenAI's `server_vad` settings and the VAD options they set (OpenAI's realtime API defines them)."""
TRUE: Final = frozenset({"true", "1"})
FALSE: Final = frozenset({"false", "0", ""})
# A list field may come with or without the brackets OpenAI's SDKs add to its name.
LIST_FIELDS: Final = ("timestamp_granularities", "include", "languages")
FIELDS: Final = frozenset(
    {"model", "language", "prompt", "response_format", "stream", CHUNKING, *DIARIZATION_FIELDS}
    | {f"{name}[]" for name in LIST_FIELDS}
    | {"timestamp_granularities", "include"}
)
NO_KNOWN_SPEAKERS: Final = (
    "naming speakers from reference clips is not supported: the diarization stage tells voices apart but does not "
    "match them against reference audio. Leave out {what}; `diarized_json` labels the speakers A, B, … in the "
    "order they are first heard"
)


@dataclass(frozen=True)
class OpenAIRequest:
    """How to answer: what the request asked for beyond the job itself."""

    model: str | None
    """The model the job runs on; None: the service's default."""
    response_format: ResponseFormat
    stream: bool
    words: bool
    """`timestamp_granularities[]` holds `word`: `verbose_json` lists the words."""
    logprobs: bool

    @property
    def diarized(self) -> bool:
        """`diarized_json`: the job runs with option `diarize`."""
        return self.response_format == DIARIZED


def form_shape(task: Task, offer: ModelOffer) -> FormShape:
    """The OpenAI form of `task`, read through `POST /jobs`' submit path; its model checked against `offer`."""

    async def finish(submission: Submission) -> None:
        asked = read(submission.extra_values, offer, task)
        submission.model = asked.model
        submission.language = _language(submission.extra_values)
        submission.options = decode_options(
            submission.extra_values, submission.options, submission.option_values, diarize=asked.diarized
        )

    return FormShape(
        audio_field="file",
        fields=frozenset(),
        extra_fields=FIELDS,
        extra_prefixes=(f"{CHUNKING}[",),
        implied_options=implied_options,
        finish=finish,
        task=task,
    )


def implied_options(values: Mapping[str, list[str]]) -> Mapping[str, str]:
    """`diarized_json` implies option `diarize`, so speaker counts sent with it are read as diarization's."""
    return {"diarize": "true"} if (_one(values, "response_format") or "").strip() == DIARIZED else {}


def read(values: Mapping[str, list[str]], offer: ModelOffer, task: Task) -> OpenAIRequest:
    """The answer the form asks for; 400 in OpenAI's shape naming the field at fault."""
    response_format = _one(values, "response_format") or "json"
    for name in DIARIZATION_FIELDS:
        if name in values:
            raise OpenAIError(400, NO_KNOWN_SPEAKERS.format(what=f"`{name}`"), param=name, code="unsupported_value")
    formats = RESPONSE_FORMATS if task == "transcribe" else TRANSLATION_FORMATS
    if response_format not in formats:
        raise OpenAIError(
            400,
            f"response_format {response_format!r} is not supported here: use one of {', '.join(formats)}",
            param="response_format",
            code="invalid_value",
        )
    stream = _flag(values, "stream")
    if stream and response_format == DIARIZED:
        raise OpenAIError(
            400,
            "stream=true cannot be combined with diarized_json: the speakers are known only once the whole job is "
            "diarized. Leave out stream, or ask for another format",
            param="stream",
            code="unsupported_value",
        )
    granularities = _many(values, "timestamp_granularities")
    _check_among(granularities, GRANULARITIES, "timestamp_granularities")
    includes = _many(values, "include")
    _check_among(includes, INCLUDES, "include")
    return OpenAIRequest(
        model=served_model(_one(values, "model") or "", offer),
        response_format=response_format,  # type: ignore[arg-type]  # checked against RESPONSE_FORMATS above
        stream=stream,
        words="word" in granularities,
        logprobs="logprobs" in includes,
    )


def decode_options(
    values: Mapping[str, list[str]], native: DecodeOptions, given: Mapping[str, str], *, diarize: bool = False
) -> DecodeOptions:
    """`native` (the decoding options read by their own names) with the OpenAI fields' values; an option sent by
    its own name wins over the OpenAI field that would set it. `diarize` (`diarized_json`): the job must diarize
    (`implied_options` turned it on unless the form said `diarize=false`, a 400 here)."""
    if diarize and not native.diarize:
        raise OpenAIError(
            400,
            "response_format=diarized_json labels speakers, which needs diarization: leave out diarize=false "
            "(or ask for another response_format)",
            param="diarize",
            code="invalid_value",
        )
    found: dict[str, Any] = {}
    if (prompt := _one(values, "prompt")) is not None and prompt.strip():
        found["initial_prompt"] = prompt
    granularities = _many(values, "timestamp_granularities")
    found["word_timestamps"] = "word" in granularities or "logprobs" in _many(values, "include")
    if languages := [code.strip().lower() for code in _many(values, "languages") if code.strip()]:
        found["languages"] = languages
    found |= _chunking(values)
    for name, text in given.items():
        if text.strip():
            found.pop(name, None)
    merged = {**msgspec.to_builtins(native), **found}
    try:
        return options.parse_json(merged)
    except UnprocessableError as exc:
        raise OpenAIError(400, exc.message, param=_param_of(exc.message), code="invalid_value") from exc


def _language(values: Mapping[str, list[str]]) -> str | None:
    try:
        return parse_language(_one(values, "language") or "")
    except UnprocessableError as exc:
        raise OpenAIError(400, exc.message, param="language", code="invalid_value") from exc


def _chunking(values: Mapping[str, list[str]]) -> dict[str, Any]:
    """The VAD options of `chunking_strategy`: `auto`, a form's `chunking_strategy[type]` … fields, or JSON text."""
    strategy: dict[str, Any] = {
        key.removeprefix(f"{CHUNKING}[").removesuffix("]"): _one(values, key)
        for key in values
        if key.startswith(f"{CHUNKING}[")
    }
    if (whole := _one(values, CHUNKING)) is not None and whole.strip():
        if whole.strip() == "auto":
            return {"vad": True}
        try:
            strategy = json.loads(whole)
        except json.JSONDecodeError as exc:
            raise OpenAIError(
                400,
                f"chunking_strategy {whole!r} is neither `auto` nor a JSON object such as "
                '{"type": "server_vad", "threshold": 0.5}',
                param=CHUNKING,
                code="invalid_value",
            ) from exc
    if not strategy:
        return {}
    if not isinstance(strategy, dict) or strategy.get("type") != "server_vad":
        raise OpenAIError(
            400,
            "chunking_strategy must be `auto` or an object of type `server_vad` (with `threshold`, "
            "`silence_duration_ms`, `prefix_padding_ms`)",
            param=CHUNKING,
            code="invalid_value",
        )
    found: dict[str, Any] = {"vad": True}
    for key, option in SERVER_VAD_OPTIONS.items():
        if (value := strategy.get(key)) is not None:
            found[option] = _number(value, f"{CHUNKING}.{key}", integral=option != "vad_threshold")
    return found


def _number(value: object, param: str, *, integral: bool) -> float | int:
    try:
        number = float(str(value))
    except ValueError:
        number = float("nan")
    if number != number or (integral and not number.is_integer()):  # NaN, or a fraction of a millisecond
        kind = "a whole number" if integral else "a number"
        raise OpenAIError(400, f"{param} must be {kind} (got {value!r})", param=param, code="invalid_value")
    return int(number) if integral else number


def _param_of(message: str) -> str | None:
    """The OpenAI field behind a decoding option named in `message`."""
    for option, field in (
        ("initial_prompt", "prompt"),
        ("languages", "languages"),
        ("temperature", "temperature"),
        ("vad", CHUNKING),
    ):
        if f"`{option}" in message:
            return field
    return None


def _one(values: Mapping[str, list[str]], name: str) -> str | None:
    found = values.get(name, [])
    if len(found) > 1:
        raise OpenAIError(400, f"the form has more than one `{name}` field", param=name, code="invalid_value")
    return found[0] if found else None


def _many(values: Mapping[str, list[str]], name: str) -> list[str]:
    """A list field: repeated `name[]` parts (OpenAI's SDKs), or `name` parts, each a value or comma-separated."""
    raw = [*values.get(f"{name}[]", []), *values.get(name, [])]
    return [item.strip() for text in raw for item in text.split(",") if item.strip()]


def _check_among(given: list[str], allowed: tuple[str, ...], name: str) -> None:
    if unknown := [value for value in given if value not in allowed]:
        raise OpenAIError(
            400,
            f"{name} {', '.join(map(repr, unknown))} is not supported: use {' and/or '.join(allowed)}",
            param=name,
            code="invalid_value",
        )


def _flag(values: Mapping[str, list[str]], name: str) -> bool:
    text = (_one(values, name) or "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise OpenAIError(400, f"{name} must be true or false (got {text!r})", param=name, code="invalid_value")
