"""The OpenAPI description of the OpenAI-compatible routes (merged into `gateway.openapi`'s document)."""

from __future__ import annotations

from typing import Any, Final

from gateway import options
from gateway.openai_api.request import GRANULARITIES, INCLUDES, RESPONSE_FORMATS, TRANSLATION_FORMATS
from schemas.languages import WHISPER_LANGUAGES
from schemas.openai_api import (
    DiarizedTranscription,
    OpenAIErrorBody,
    OpenAIModelList,
    Transcription,
    VerboseTranscription,
)

BODIES: Final = (OpenAIErrorBody, Transcription, VerboseTranscription, DiarizedTranscription, OpenAIModelList)
REASONS: Final = {
    400: "A field is missing or has a value the service does not accept, or the job failed (code `job_failed`)",
    401: "The API key is missing or wrong",
    408: "The upload sent no data for `JETSCRIBE_UPLOAD_IDLE_TIMEOUT_S`",
    413: "The upload exceeds the size limit",
    429: "The job queue is full, or this caller has its maximum of uploads in progress; see Retry-After",
    500: "The job disappeared while it was awaited",
    503: "No worker is running, NATS is unavailable, or the gateway is shutting down",
    504: "The job did not finish within `JETSCRIBE_OPENAI_WAIT_S`; the message names it for `GET /jobs/{id}`",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {"description": REASONS[code], "content": {"application/json": {"schema": _ref("OpenAIErrorBody")}}}
        for code in codes
    }


def _form(*, translate: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "file": {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "The audio, in any format ffmpeg reads",
        },
        "model": {"type": "string", "description": "`whisper-1` or a served model (GET /v1/models)"},
        "prompt": {"type": "string", "maxLength": 2000, "description": "Text that primes the decoder"},
        "response_format": {
            "type": "string",
            "enum": list(RESPONSE_FORMATS if not translate else TRANSLATION_FORMATS),
            "default": "json",
            "description": "`diarized_json` (transcriptions): the job runs with `diarize`; segments name their speaker",
        },
        "temperature": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
        "language": {
            "type": "string",
            "enum": ["", *sorted(WHISPER_LANGUAGES)],
            "description": "ISO 639-1 code of the spoken language; absent = detect it",
        },
    }
    if not translate:
        properties |= {
            "timestamp_granularities[]": {
                "type": "array",
                "items": {"type": "string", "enum": list(GRANULARITIES)},
                "description": "`word` adds `words` to verbose_json (and word timings to the job)",
            },
            "include[]": {
                "type": "array",
                "items": {"type": "string", "enum": list(INCLUDES)},
                "description": "`logprobs`: one entry per word (log of whisper.cpp's word probability)",
            },
            "languages[]": {
                "type": "array",
                "items": {"type": "string", "enum": sorted(WHISPER_LANGUAGES)},
                "description": "Detect the language among these only",
            },
            "stream": {
                "type": "boolean",
                "default": False,
                "description": "Answer with Server-Sent Events: `transcript.text.delta` per segment, then "
                "`transcript.text.done`",
            },
            "chunking_strategy": {
                "type": "string",
                "description": '`auto` (voice activity detection on) or a JSON object {"type": "server_vad", '
                '"threshold", "silence_duration_ms", "prefix_padding_ms"}; forms may also send '
                "`chunking_strategy[type]` and the like. Absent: the service's VAD setting",
            },
        }
    form: dict[str, Any] = {
        "type": "object",
        "required": ["file", "model"],
        "properties": {**properties, **{k: v for k, v in options.FORM_PROPERTIES.items() if k not in properties}},
        "description": "OpenAI's form; every decoding option of POST /jobs may be sent by its own name too. "
        "Other fields are ignored.",
    }
    return form


def _audio_operation(*, translate: bool) -> dict[str, Any]:
    answer = {
        "application/json": {
            "schema": {"anyOf": [_ref("Transcription"), _ref("VerboseTranscription"), _ref("DiarizedTranscription")]}
        },
        "text/plain": {"schema": {"type": "string"}},
        "application/x-subrip": {"schema": {"type": "string"}},
        "text/vtt": {"schema": {"type": "string"}},
    }
    if not translate:
        answer["text/event-stream"] = {"schema": {"type": "string"}}
    what = "Translate speech into English" if translate else "Transcribe audio"
    return {
        "post": {
            "summary": f"{what} (OpenAI-compatible); the request is an ordinary job",
            "description": (
                "Queued as a job like POST /jobs (same limits, job record and Idempotency-Key), then awaited: the "
                "answer is the finished transcript in `response_format`. `X-Job-Id` names the job. A client that "
                "disconnects cancels it (JETSCRIBE_OPENAI_CANCEL_ON_DISCONNECT). Errors use OpenAI's error body."
            ),
            "operationId": "openaiTranslation" if translate else "openaiTranscription",
            "tags": ["OpenAI-compatible"],
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": _form(translate=translate)}},
            },
            "responses": {
                "200": {
                    "description": "The transcript",
                    "headers": {"X-Job-Id": {"schema": {"type": "string"}, "description": "The job's id"}},
                    "content": answer,
                },
                **_errors(400, 401, 408, 413, 429, 500, 503, 504),
            },
        }
    }


def paths() -> dict[str, Any]:
    return {
        "/v1/audio/transcriptions": _audio_operation(translate=False),
        "/v1/audio/translations": _audio_operation(translate=True),
        "/v1/models": {
            "get": {
                "summary": "The models live workers serve, and `whisper-1` (the default model), OpenAI-style",
                "operationId": "openaiModels",
                "tags": ["OpenAI-compatible"],
                "responses": {
                    "200": {
                        "description": "Models",
                        "content": {"application/json": {"schema": _ref("OpenAIModelList")}},
                    },
                    **_errors(401),
                },
            }
        },
    }
