"""Messages about jobs in flight: progress (core subject), terminal events (events stream),
cancel requests (core subject) and dead letters for job messages that failed validation."""

from datetime import datetime
from typing import Literal

import msgspec

from schemas.job import Job, Segment
from schemas.names import EventKind


class ProgressEvent(msgspec.Struct, kw_only=True, tag_field="type", tag="progress"):
    """Published on `jetscribe.progress.<job_id>` as the job moves; `seq` orders a job's events."""

    job_id: str
    seq: int
    percent: int
    stage: Literal["queued", "fetching", "decoding", "transcribing", "finishing", "diarizing"]
    """`diarizing`: the diarization stage of a job with `diarize` (its `percent` runs 0–100 again)."""


class SegmentEvent(msgspec.Struct, kw_only=True, tag_field="type", tag="segment"):
    """Published on `jetscribe.progress.<job_id>` as soon as whisper produces a segment."""

    job_id: str
    seq: int
    segment: Segment


LiveEvent = ProgressEvent | SegmentEvent


class TerminalEvent(msgspec.Struct, kw_only=True):
    """Published once on `jetscribe.events.<type>.<job_id>` (events stream) when a job ends.

    `job.segments` is empty: the transcript is the object `transcript_object` in the
    `jetscribe_transcripts` bucket, so events stay small however long the audio was.
    """

    type: EventKind
    job: Job
    transcript_object: str | None = None
    occurred_at: datetime


class CancelRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Published on `jetscribe.cancel.<job_id>`; the worker running that job aborts it."""

    job_id: str
    requested_at: datetime


class InvalidJobNotice(msgspec.Struct, kw_only=True):
    """Published on `jetscribe.deadletter.invalid` when a job message fails validation."""

    job_id: str | None
    """The id, if one could be read from the message."""
    reason: str
    payload: str
    """The offending message, decoded leniently and truncated to 64 KiB."""
    received_at: datetime
