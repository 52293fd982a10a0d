"""Writing the job list: a job's submission entry, and one live status entry that follows its status.

A job has one entry in `JETSCRIBE_JOB_LIST` (its submission, never moved) and one in
`JETSCRIBE_JOB_STATUS_LIST` on the subject of its current status. Its place in the
`jetscribe_job_list` bucket names both sequences; a status change publishes the new entry, moves
the place by compare-and-set and deletes the old entry. The place also keeps the revision of the job
record it reflects, so a change read late (a redelivery, a second gateway) never undoes a newer one.

What a crash between these steps can leave is an entry no place points at: the reader checks every
entry against the job record and skips one that disagrees, and the entries expire with the records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from jetscribe.errors import ConcurrentUpdateError
from schemas import JobRecord, JobStatus, encode, names
from schemas.codec import decode_list_place
from schemas.joblist import JobListEntry, JobListPlace

log = logging.getLogger(__name__)

MAX_PLACE_ATTEMPTS: Final = 10
PUBLISH_TIMEOUT_S: Final = 5.0


class JobListIndex:
    """Keeps each job's entries in the job-list streams in line with its record."""

    def __init__(
        self, js: JetStreamContext, places: KeyValue, on_finished: Callable[[JobRecord], None] | None = None
    ) -> None:
        """`on_finished` is called once for each job this index lists in a terminal status (the metrics' usage)."""
        self._js = js
        self._places = places
        self._on_finished = on_finished

    async def add_submission(self, record: JobRecord) -> None:
        """List a job being submitted (before its record exists): its submission entry and a `queued` entry.

        Publishing the submission again (a retried request) is deduplicated by JetStream for the duplicate
        window, so the job is listed once.
        """
        tenant = record.tenant
        submitted_seq, status_seq = await asyncio.gather(
            self._publish_submission(tenant, record.id), self._publish_status(tenant, record.id, record.status)
        )
        place = JobListPlace(tenant=tenant, submitted_seq=submitted_seq, status=record.status, status_seq=status_seq)
        try:
            await self._places.create(record.id, encode(place))
        except KeyWrongLastSequenceError:
            await self._delete_status_entry(status_seq)

    async def reflect(self, record: JobRecord, revision: int) -> None:
        """Bring the job's entries in line with `record`, read at KV revision `revision`.

        Lists a job that never passed a gateway (published straight to NATS); moves its status entry
        when its status changed; does nothing for a record older than the one already reflected.
        """
        for _ in range(MAX_PLACE_ATTEMPTS):
            found = await self._place(record.id)
            if found is None:
                if await self._list_unknown(record, revision):
                    return
                continue
            place, place_revision = found
            if place.revision > revision or place.status == record.status:
                return
            if await self._move(record, revision, place, place_revision):
                return
        raise ConcurrentUpdateError(f"the job-list place of job {record.id!r} kept changing; it is retried")

    async def forget(self, job_id: str) -> None:
        """Remove a deleted job's entries and its place."""
        found = await self._place(job_id)
        if found is None:
            return
        place, _ = found
        await self._delete(names.JOB_LIST_STREAM, place.submitted_seq)
        await self._delete_status_entry(place.status_seq)
        await self._places.purge(job_id)

    async def _list_unknown(self, record: JobRecord, revision: int) -> bool:
        tenant = record.tenant
        submitted_seq = await self._publish_submission(tenant, record.id)
        status_seq = await self._publish_status(tenant, record.id, record.status)
        place = JobListPlace(
            tenant=tenant, submitted_seq=submitted_seq, status=record.status, status_seq=status_seq, revision=revision
        )
        try:
            await self._places.create(record.id, encode(place))
        except KeyWrongLastSequenceError:
            await self._delete_status_entry(status_seq)
            return False
        log.info("job %s listed from its record (submitted straight to NATS)", record.id)
        return True

    async def _move(self, record: JobRecord, revision: int, place: JobListPlace, place_revision: int) -> bool:
        status_seq = await self._publish_status(place.tenant, record.id, record.status)
        moved = JobListPlace(
            tenant=place.tenant,
            submitted_seq=place.submitted_seq,
            status=record.status,
            status_seq=status_seq,
            revision=revision,
        )
        try:
            await self._places.update(record.id, encode(moved), last=place_revision)
        except KeyWrongLastSequenceError:
            await self._delete_status_entry(status_seq)
            return False
        await self._delete_status_entry(place.status_seq)
        self._finished(record)
        return True

    def _finished(self, record: JobRecord) -> None:
        if record.is_terminal and self._on_finished is not None:
            self._on_finished(record)

    async def _place(self, job_id: str) -> tuple[JobListPlace, int] | None:
        try:
            entry = await self._places.get(job_id)
        except KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        return decode_list_place(entry.value), entry.revision or 0

    async def _publish_submission(self, tenant: str, job_id: str) -> int:
        ack = await self._js.publish(
            names.submitted_subject(tenant),
            encode(JobListEntry(job_id=job_id)),
            timeout=PUBLISH_TIMEOUT_S,
            headers={names.MSG_ID_HEADER: f"{job_id}:submitted"},
        )
        return ack.seq

    async def _publish_status(self, tenant: str, job_id: str, status: JobStatus) -> int:
        ack = await self._js.publish(
            names.status_list_subject(tenant, status), encode(JobListEntry(job_id=job_id)), timeout=PUBLISH_TIMEOUT_S
        )
        return ack.seq

    async def _delete_status_entry(self, seq: int) -> None:
        await self._delete(names.JOB_STATUS_LIST_STREAM, seq)

    async def _delete(self, stream: str, seq: int) -> None:
        try:
            await self._js.delete_msg(stream, seq)
        except NotFoundError:
            pass
