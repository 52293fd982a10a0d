"""The OpenAPI 3.1 description of the HTTP API, generated from the `schemas` Structs, and the Swagger UI page."""

from __future__ import annotations

import asyncio
from importlib import metadata, resources
from typing import Any, Final

from aiohttp import web

from gateway import keys, options
from gateway.jobs import DEFAULT_PAGE, MAX_PAGE, STATUSES
from gateway.openai_api import spec as openai_spec
from gateway.submit import TASKS
from gateway.transcripts import FORMATS, MAX_CUE_S, MAX_LINE_CHARS, MIN_CUE_S, MIN_LINE_CHARS
from schemas import Job, ProgressEvent, Segment, SegmentEvent, names
from schemas.api import ErrorBody, Health, HealthSummary, JobAccepted, JobList, ModelList, StreamDone
from schemas.export import schema_components
from schemas.languages import WHISPER_LANGUAGES

BODIES: Final = (
    Job,
    JobAccepted,
    ErrorBody,
    JobList,
    Health,
    HealthSummary,
    ModelList,
    ProgressEvent,
    SegmentEvent,
    StreamDone,
    Segment,
)
REF: Final = "#/components/schemas/{name}"
STATIC: Final = resources.files("gateway") / "static"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "The request is malformed",
        401: "The API key is missing or wrong",
        403: "Only an admin key lists another tenant's jobs",
        404: "No such job (or another tenant's)",
        408: "The upload sent no data for `JETSCRIBE_UPLOAD_IDLE_TIMEOUT_S`",
        409: "The job is in the wrong state for this request",
        413: "The upload exceeds the size limit",
        415: "The body is neither multipart/form-data nor application/json",
        422: (
            "A field has a value the service does not accept; for a model that is not on offer (or cannot do the "
            "language), `detail.models` lists the models on offer"
        ),
        429: (
            "The job queue is full, this tenant has its maximum of queued jobs, or this caller has its maximum of "
            "uploads in progress; see Retry-After"
        ),
        503: "NATS is unavailable",
    }
    return {str(code): _json("ErrorBody", reasons[code]) for code in codes}


def _health(description: str) -> dict[str, Any]:
    schema = {"anyOf": [_ref("Health"), _ref("HealthSummary")]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_JOB_ID: Final = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": names.JOB_ID_PATTERN},
}


def _paths() -> dict[str, Any]:
    submit_form: dict[str, Any] = {
        "type": "object",
        "description": "The audio as the file `audio`, or its address as `audio_url`: exactly one of them.",
        "properties": {
            "audio": {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "minLength": 1,
                "description": "Any format ffmpeg reads (not empty)",
            },
            "audio_url": {
                "type": "string",
                "format": "uri",
                "maxLength": 2048,
                "description": "An http(s) address a worker downloads the audio from (public addresses only)",
            },
            "language": {
                "type": "string",
                "enum": ["", *sorted(WHISPER_LANGUAGES)],
                "description": "ISO 639-1 code of the spoken language; absent or empty = auto-detect",
            },
            "task": {"type": "string", "enum": sorted(TASKS), "default": "transcribe"},
            "model": {
                "type": "string",
                "maxLength": 64,
                "description": (
                    "The Whisper model to run the job with (GET /models lists those on offer); absent or empty = the "
                    "service's default model. A model no live worker serves (and not declared) is refused with 422, "
                    "and so is a language other than English for an English-only model"
                ),
            },
            "webhook_url": {"type": "string", "format": "uri", "description": "Absolute http(s) URL told of the end"},
            **options.FORM_PROPERTIES,
        },
    }
    submit_json = {
        "type": "object",
        "description": "A job whose audio a worker downloads from `audio_url`; the options as in the form, typed.",
        "required": ["audio_url"],
        "additionalProperties": False,
        "properties": {
            "audio_url": submit_form["properties"]["audio_url"],
            "language": {
                "anyOf": [submit_form["properties"]["language"], {"type": "null"}],
                "description": "ISO 639-1 code of the spoken language; absent, empty or null = auto-detect",
            },
            "task": submit_form["properties"]["task"],
            "model": submit_form["properties"]["model"],
            "webhook_url": {
                "anyOf": [submit_form["properties"]["webhook_url"], {"type": "null"}],
                "description": "Absolute http(s) URL told of the end",
            },
            **options.JSON_PROPERTIES,
        },
    }
    return {
        "/jobs": {
            "post": {
                "summary": "Upload audio and queue a transcription job",
                "operationId": "submitJob",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 255},
                        "description": "A retried submission with the same key returns the same job",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {"schema": submit_form},
                        "application/json": {"schema": submit_json},
                    },
                },
                "responses": {
                    "202": {
                        **_json("JobAccepted", "Queued"),
                        "headers": {"Location": {"schema": {"type": "string"}, "description": "/jobs/{job_id}"}},
                    },
                    **_errors(400, 401, 408, 413, 415, 422, 429, 503),
                },
            },
            "get": {
                "summary": "List jobs, newest first",
                "description": (
                    "Newest submission first; with `status`, the jobs now in that status, newest arrival in it first. "
                    "Pass `next_cursor` as `cursor` (with the same `status`) for the next page: paging returns each "
                    "job once while new jobs arrive. A page may hold fewer than `limit` jobs while `next_cursor` is "
                    "not null. A page costs the same however many jobs are kept. A key lists its own tenant's jobs; "
                    "an admin key lists every tenant's, or one tenant's with `tenant`."
                ),
                "operationId": "listJobs",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUSES)}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor"},
                    {
                        "name": "tenant",
                        "in": "query",
                        "schema": {"type": "string", "pattern": names.TENANT_PATTERN},
                        "description": "admin keys: list only this tenant's jobs (other keys: only their own tenant)",
                    },
                ],
                "responses": {
                    "200": _json("JobList", "One page of jobs (without segments)"),
                    **_errors(400, 401, 403, 422),
                },
            },
        },
        "/jobs/{job_id}": {
            "parameters": [_JOB_ID],
            "get": {
                "summary": "The job: status, progress, and segments once done",
                "operationId": "getJob",
                "responses": {"200": _json("Job", "The job"), **_errors(401, 404)},
            },
            "delete": {
                "summary": "Cancel a queued or running job",
                "operationId": "cancelJob",
                "responses": {"204": {"description": "The job is (being) cancelled"}, **_errors(401, 404, 409)},
            },
        },
        "/jobs/{job_id}/transcript": {
            "parameters": [_JOB_ID],
            "get": {
                "summary": "The finished transcript as text, SRT, WebVTT, TSV or JSON",
                "operationId": "getTranscript",
                "parameters": [
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(FORMATS), "default": "txt"},
                    },
                    {
                        "name": "max_line_chars",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": MIN_LINE_CHARS, "maximum": MAX_LINE_CHARS},
                        "description": "SRT/WebVTT: characters per line; cues are cut at words to keep two lines",
                    },
                    {
                        "name": "max_cue_s",
                        "in": "query",
                        "schema": {"type": "number", "minimum": MIN_CUE_S, "maximum": MAX_CUE_S},
                        "description": "SRT/WebVTT: seconds a cue may last; longer segments are cut at words",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The transcript",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/x-subrip": {"schema": {"type": "string"}},
                            "text/vtt": {"schema": {"type": "string"}},
                            "text/tab-separated-values": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"type": "array", "items": _ref("Segment")}},
                        },
                    },
                    **_errors(401, 404, 409, 422),
                },
            },
        },
        "/jobs/{job_id}/stream": {
            "parameters": [_JOB_ID],
            "get": {
                "summary": "Server-Sent Events: `progress` (ProgressEvent) … `done` (StreamDone), then close",
                "description": (
                    "The current state comes at once (a finished job gets `done` immediately). Progress events carry "
                    "`id: <seq>`; reconnect with `Last-Event-ID` to receive only newer ones, after a `reset` event "
                    "with the current state (events in between are not replayed; `done` carries every segment). "
                    "`seq` keeps growing across a retried job's attempts. `?segments=true` adds a "
                    "`segment` event (SegmentEvent) per transcribed segment. A `: ping` comment comes every 15 s."
                ),
                "operationId": "streamJob",
                "parameters": [
                    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                    {
                        "name": "last_event_id",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0},
                        "description": "The same as the Last-Event-ID header, for clients that cannot set headers",
                    },
                    {"name": "segments", "in": "query", "schema": {"type": "boolean", "default": False}},
                ],
                "responses": {
                    "200": {
                        "description": "The event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 404),
                },
            },
        },
        "/models": {
            "get": {
                "summary": "The models on offer (or with jobs queued): workers, slots and queue of each",
                "operationId": "listModels",
                "responses": {"200": _json("ModelList", "Every model, by name"), **_errors(401)},
            }
        },
        "/health": {
            "get": {
                "summary": "NATS connectivity, queue depth and live workers",
                "description": "With API keys configured the detail needs a key; without one only the status shows.",
                "operationId": "health",
                "responses": {
                    "200": _health("Healthy"),
                    "503": _health("NATS is unreachable or no worker is alive"),
                    **_errors(401),
                },
            }
        },
        "/livez": {
            "get": {"summary": "Liveness", "operationId": "livez", "responses": {"200": {"description": "Alive"}}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: connected to NATS with the topology in place",
                "operationId": "readyz",
                "responses": {"200": {"description": "Ready"}, **_errors(503)},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "responses": {
                    "200": {"description": "Text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}
                },
            }
        },
    }


def _version() -> str:
    try:
        return metadata.version("jetscribe")
    except metadata.PackageNotFoundError:
        return "unknown"


# Read once at import: the lookup stats the file system, which the app factory (run on the event loop) must not.
VERSION: Final = _version()


def openapi_spec(*, keys_required: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this gateway (bearer auth on /jobs when API keys are configured)."""
    _, components = schema_components((*BODIES, *openai_spec.BODIES), REF)
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "jetscribe",
            "version": VERSION,
            "description": "Asynchronous speech transcription: upload audio, follow the job, fetch the transcript.",
        },
        "paths": {**_paths(), **openai_spec.paths()},
        "components": {"schemas": components},
    }
    if keys_required:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, item in spec["paths"].items():
            if path.startswith(("/jobs", "/models", "/v1/")):
                for operation in item.values():
                    if isinstance(operation, dict) and "responses" in operation:
                        operation["security"] = [{"bearer": []}]
    return spec


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[keys.OPENAPI])


async def docs_page(request: web.Request) -> web.Response:
    body = await asyncio.to_thread((STATIC / "index.html").read_bytes)  # file I/O stays off the event loop
    return web.Response(body=body, content_type="text/html", charset="utf-8")
