"""Encoders and decoders, built once; decoding errors become `SchemaError` with a readable message."""

from typing import Final, TypeVar

import msgspec

from schemas.api import Health, JobList
from schemas.errors import SchemaError
from schemas.events import CancelRequest, InvalidJobNotice, LiveEvent, TerminalEvent
from schemas.job import Job, Segment
from schemas.joblist import JobListEntry, JobListPlace
from schemas.state import IdempotencyRecord, JobRecord
from schemas.submit import DiarizationMessage, JobMessage
from schemas.workers import DiarizerHeartbeat, WorkerHeartbeat

T = TypeVar("T")


_encoder: Final = msgspec.json.Encoder()
_job_message: Final = msgspec.json.Decoder(JobMessage)
_record: Final = msgspec.json.Decoder(JobRecord)
_live_event: Final = msgspec.json.Decoder(LiveEvent)
_terminal_event: Final = msgspec.json.Decoder(TerminalEvent)
_cancel: Final = msgspec.json.Decoder(CancelRequest)
_heartbeat: Final = msgspec.json.Decoder(WorkerHeartbeat)
_diarizer_heartbeat: Final = msgspec.json.Decoder(DiarizerHeartbeat)
_segments: Final = msgspec.json.Decoder(list[Segment])
_job: Final = msgspec.json.Decoder(Job)
_invalid: Final = msgspec.json.Decoder(InvalidJobNotice)
_job_list: Final = msgspec.json.Decoder(JobList)
_health: Final = msgspec.json.Decoder(Health)
_list_entry: Final = msgspec.json.Decoder(JobListEntry)
_list_place: Final = msgspec.json.Decoder(JobListPlace)
_idempotency: Final = msgspec.json.Decoder(IdempotencyRecord)
_diarization: Final = msgspec.json.Decoder(DiarizationMessage)


def encode(message: msgspec.Struct | list[Segment]) -> bytes:
    """JSON bytes of any schema message."""
    return _encoder.encode(message)


def _decoding(decoder: msgspec.json.Decoder[T], what: str, data: bytes) -> T:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise SchemaError(f"invalid {what}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise SchemaError(f"{what} is not valid JSON: {exc}") from exc


def decode_job_message(data: bytes) -> JobMessage:
    return _decoding(_job_message, "job message", data)


def decode_record(data: bytes) -> JobRecord:
    return _decoding(_record, "job record", data)


def decode_live_event(data: bytes) -> LiveEvent:
    return _decoding(_live_event, "progress event", data)


def decode_terminal_event(data: bytes) -> TerminalEvent:
    return _decoding(_terminal_event, "terminal event", data)


def decode_cancel(data: bytes) -> CancelRequest:
    return _decoding(_cancel, "cancel request", data)


def decode_heartbeat(data: bytes) -> WorkerHeartbeat:
    return _decoding(_heartbeat, "worker heartbeat", data)


def decode_diarizer_heartbeat(data: bytes) -> DiarizerHeartbeat:
    return _decoding(_diarizer_heartbeat, "diarizer heartbeat", data)


def decode_segments(data: bytes) -> list[Segment]:
    return _decoding(_segments, "transcript", data)


def decode_job(data: bytes) -> Job:
    return _decoding(_job, "job", data)


def decode_invalid_notice(data: bytes) -> InvalidJobNotice:
    return _decoding(_invalid, "dead-letter notice", data)


def decode_list_entry(data: bytes) -> JobListEntry:
    return _decoding(_list_entry, "job-list entry", data)


def decode_list_place(data: bytes) -> JobListPlace:
    return _decoding(_list_place, "job-list place", data)


def decode_job_list(data: bytes) -> JobList:
    return _decoding(_job_list, "job list", data)


def decode_health(data: bytes) -> Health:
    return _decoding(_health, "health report", data)


def decode_idempotency_record(data: bytes) -> IdempotencyRecord:
    return _decoding(_idempotency, "idempotency record", data)


def decode_diarization_message(data: bytes) -> DiarizationMessage:
    return _decoding(_diarization, "diarization message", data)
