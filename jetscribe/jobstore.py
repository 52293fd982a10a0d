"""Job state in KV and transcripts in the object store, shared by gateway and worker.

Every state change is a compare-and-set on the KV entry's revision, so a cancel racing a
completion, or a stale redelivery racing a finished job, resolves to exactly one winner.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, ObjectNotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from jetscribe.errors import ConcurrentUpdateError, JobNotFoundError, TranscriptMissingError
from schemas import JobRecord, Segment, encode, names
from schemas.codec import decode_record, decode_segments

MAX_CAS_ATTEMPTS: Final = 20
TRANSCRIPT_READ_TIMEOUT_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Versioned:
    """A job record and the KV revision it was read at."""

    record: JobRecord
    revision: int


Transition = Callable[[JobRecord], JobRecord | None]
"""Given the current record, the record to write, or None to leave it as it is."""


class JobStore:
    """Typed access to the jobs KV bucket and the transcripts object store."""

    def __init__(self, jobs: KeyValue, transcripts: ObjectStore) -> None:
        self._kv = jobs
        self._transcripts = transcripts

    async def get(self, job_id: str) -> Versioned | None:
        try:
            entry = await self._kv.get(job_id)
        except KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        return Versioned(decode_record(entry.value), entry.revision or 0)

    async def require(self, job_id: str) -> Versioned:
        found = await self.get(job_id)
        if found is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return found

    async def create(self, record: JobRecord) -> Versioned | None:
        """Create the record; None if a record with this id already exists."""
        try:
            revision = await self._kv.create(record.id, encode(record))
        except KeyWrongLastSequenceError:
            return None
        return Versioned(record, revision)

    async def put(self, current: Versioned, record: JobRecord) -> Versioned | None:
        """Write `record` if the entry is still at `current.revision`; None if someone else wrote first."""
        try:
            revision = await self._kv.update(record.id, encode(record), last=current.revision)
        except KeyWrongLastSequenceError:
            return None
        return Versioned(record, revision)

    async def transition(self, job_id: str, change: Transition) -> Versioned:
        """Apply `change` by compare-and-set, re-reading and retrying when another writer wins.

        Returns the record as it stands afterwards (unchanged if `change` returned None).
        """
        for _ in range(MAX_CAS_ATTEMPTS):
            current = await self.require(job_id)
            wanted = change(current.record)
            if wanted is None:
                return current
            written = await self.put(current, wanted)
            if written is not None:
                return written
        raise ConcurrentUpdateError(f"job {job_id!r} changed {MAX_CAS_ATTEMPTS} times during one update; try again")

    async def delete(self, job_id: str) -> None:
        await self._kv.delete(job_id)

    async def put_transcript(self, job_id: str, segments: list[Segment]) -> str:
        """Store the segments as JSON in the transcripts bucket; returns the object name."""
        name = names.transcript_object(job_id)
        await self._transcripts.put(name, io.BytesIO(encode(segments)))
        return name

    async def get_transcript(self, name: str) -> list[Segment]:
        buffer = io.BytesIO()
        try:
            # A missing chunk makes the object-store read wait forever: bound it.
            async with asyncio.timeout(TRANSCRIPT_READ_TIMEOUT_S):
                await self._transcripts.get(name, writeinto=buffer)
        except ObjectNotFoundError as exc:
            raise TranscriptMissingError(f"transcript {name!r} is gone (expired or deleted)") from exc
        except TimeoutError as exc:
            raise TranscriptMissingError(f"transcript {name!r} could not be read within 60 s: it is damaged") from exc
        return decode_segments(buffer.getvalue())

    async def delete_transcript(self, name: str) -> None:
        """Remove a transcript object (a result discarded at the last moment); a missing one is fine."""
        try:
            await self._transcripts.delete(name)
        except ObjectNotFoundError:
            pass
