"""JSON Schema for every wire message, generated from the Structs (`jetscribe schema`).

Descriptions come from docstrings. msgspec releases differ in how they strip a docstring's
indentation, so every description is put through `inspect.cleandoc` here: the generated documents
depend on the Structs alone, not on the msgspec release that read them.
"""

import inspect
from typing import Any, Final

import msgspec

from schemas.api import ErrorBody, Health, HealthSummary, JobAccepted, JobList, ModelList
from schemas.events import CancelRequest, InvalidJobNotice, ProgressEvent, SegmentEvent, TerminalEvent
from schemas.job import Job
from schemas.joblist import JobListEntry, JobListPlace
from schemas.state import IdempotencyRecord, JobRecord
from schemas.submit import DiarizationMessage, JobMessage
from schemas.workers import DiarizerHeartbeat, WorkerHeartbeat

MESSAGES: Final[tuple[type[msgspec.Struct], ...]] = (
    JobMessage,
    DiarizationMessage,
    Job,
    JobRecord,
    ProgressEvent,
    SegmentEvent,
    TerminalEvent,
    CancelRequest,
    InvalidJobNotice,
    WorkerHeartbeat,
    DiarizerHeartbeat,
    JobListEntry,
    JobListPlace,
    IdempotencyRecord,
)
API_BODIES: Final[tuple[type[msgspec.Struct], ...]] = (
    JobAccepted,
    ErrorBody,
    JobList,
    Health,
    HealthSummary,
    ModelList,
)


def schema_components(
    types: tuple[type[msgspec.Struct], ...], ref_template: str
) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """`msgspec.json.schema_components` with every description cleaned the same way on every msgspec release."""
    schemas, components = msgspec.json.schema_components(types, ref_template=ref_template)
    return tuple(_clean(s) for s in schemas), {name: _clean(c) for name, c in components.items()}


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value) if key == "description" and isinstance(value, str) else _clean(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_clean(item) for item in node]
    return node


def json_schemas(ref_template: str = "#/$defs/{name}") -> tuple[dict[str, Any], dict[str, Any]]:
    """Schemas of every message and API body, plus the shared component definitions."""
    types = MESSAGES + API_BODIES
    schemas, components = schema_components(types, ref_template)
    return {t.__name__: s for t, s in zip(types, schemas, strict=True)}, components


def bundle() -> dict[str, Any]:
    """One JSON Schema document defining every message under `$defs`."""
    _, components = json_schemas()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "jetscribe wire contract",
        "$defs": components,
    }
