"""jetscribe's wire contract: message Structs, NATS names and JSON Schema. Pure data, no I/O."""

from schemas.codec import encode
from schemas.errors import SchemaError
from schemas.events import CancelRequest, InvalidJobNotice, ProgressEvent, SegmentEvent, TerminalEvent
from schemas.job import TERMINAL_STATUSES, Job, JobStatus, JobTimings, Segment, SpeakerTime, WebhookState, Word
from schemas.state import JobRecord
from schemas.submit import DecodeOptions, DiarizationMessage, JobMessage, Task
from schemas.workers import DeviceInfo, DiarizerHeartbeat, WorkerHeartbeat

__all__ = [
    "TERMINAL_STATUSES",
    "CancelRequest",
    "DecodeOptions",
    "DeviceInfo",
    "DiarizationMessage",
    "DiarizerHeartbeat",
    "InvalidJobNotice",
    "Job",
    "JobMessage",
    "JobRecord",
    "JobStatus",
    "JobTimings",
    "ProgressEvent",
    "SchemaError",
    "Segment",
    "SegmentEvent",
    "SpeakerTime",
    "Task",
    "TerminalEvent",
    "WebhookState",
    "Word",
    "WorkerHeartbeat",
    "encode",
]
