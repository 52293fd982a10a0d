"""JSON Schema for every wire message, generated from the Structs (`jetscribe schema`)."""

from typing import Any, Final

import msgspec

from schemas.api import ErrorBody, Health, JobAccepted, JobList
from schemas.events import CancelRequest, InvalidJobNotice, ProgressEvent, SegmentEvent, TerminalEvent
from schemas.job import Job
from schemas.state import JobRecord
from schemas.submit import JobMessage
from schemas.workers import WorkerHeartbeat

MESSAGES: Final[tuple[type[msgspec.Struct], ...]] = (
    JobMessage,
    Job,
    JobRecord,
    ProgressEvent,
    SegmentEvent,
    TerminalEvent,
    CancelRequest,
    InvalidJobNotice,
    WorkerHeartbeat,
)
API_BODIES: Final[tuple[type[msgspec.Struct], ...]] = (JobAccepted, ErrorBody, JobList, Health)


def json_schemas(ref_template: str = "#/$defs/{name}") -> tuple[dict[str, Any], dict[str, Any]]:
    """Schemas of every message and API body, plus the shared component definitions."""
    types = MESSAGES + API_BODIES
    schemas, components = msgspec.json.schema_components(types, ref_template=ref_template)
    return {t.__name__: s for t, s in zip(types, schemas, strict=True)}, components


def bundle() -> dict[str, Any]:
    """One JSON Schema document defining every message under `$defs`."""
    _, components = json_schemas()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "jetscribe wire contract",
        "$defs": components,
    }
