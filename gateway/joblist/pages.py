"""Reading the job list newest first: one literal subject of a job-list stream, by sequence, before a cursor.

JetStream reads a subject forward from a sequence, and counts what follows (the `Nats-Num-Pending` of
a Direct Get batch). Reading backwards from a bound `hi` is therefore a search for the start `lo` of a
window `[lo, hi)` that holds the wanted number of entries. The first window is sized by the density
the previous scan of that list saw (as wide as the page when the subject is the only one in its
stream, as the submissions of a deployment with one tenant are); a batch reads up to twice the
entries wanted, so a window somewhat too wide still yields its newest ones; one that holds too few
is followed by an older window sized by the density it showed; one far too wide is narrowed by the
counts. Each round is one batch read; a page takes one or two. Rounds are bounded, and a scan cut
short hands back a cursor at the point it reached: a page may then be short, and the next one
continues where it stopped.

Entries are checked against the job records before they are listed: an entry whose record is gone
(expired, or a refused submission) or, in a status list, whose record has moved on, is skipped.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Final

from nats.aio.client import Client

from jetscribe.directget import StoredMessage, get_batch, get_last, get_last_for
from schemas import JobRecord, JobStatus, SchemaError, names
from schemas.codec import decode_list_entry, decode_record

MAX_ROUNDS: Final = 32
"""Batch reads one scan may make before it returns what it has with a cursor at the point it reached."""
MAX_SCANS: Final = 4
"""Scans one page may make to replace entries that turned out stale."""
WIDEN: Final = 4
"""An empty window's successor is this many times wider."""
READ_FACTOR: Final = 2
"""A batch reads up to this many times the entries still wanted."""
NARROW_AIM: Final = 0.9
"""A narrowed window aims at this share of the entries still wanted: it then likely holds few enough to keep,
and each narrowing shrinks it by at least this factor."""
FIRST_WIDTH_SLACK: Final = 1.2
"""A window is sized for this many times the entries wanted, at the density last seen."""
MAX_FIRST_WIDTH: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Scan:
    """Entries read newest first, and where the next older read starts (None: there is nothing older)."""

    messages: list[StoredMessage]
    resume_before: int | None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the list, newest first, and the sequence to continue before (None on the last page)."""

    records: list[JobRecord]
    resume_before: int | None


def list_subject(tenant: str, status: JobStatus | None) -> tuple[str, str]:
    """The stream and the subject that hold the list of `tenant`, all jobs or those in `status`: a literal subject,
    or for `names.ALL_TENANTS` (an admin's list) the wildcard over every tenant's."""
    if status is None:
        return names.JOB_LIST_STREAM, names.submitted_subject(tenant)
    return names.JOB_STATUS_LIST_STREAM, names.status_list_subject(tenant, status)


class JobListReader:
    """Reads pages of the job list. Remembers how dense each list is in its stream, to size a first window."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._density: dict[str, float] = {}

    async def page(self, *, tenant: str, status: JobStatus | None, before: int | None, limit: int) -> Page:
        """Up to `limit` jobs of `tenant` (in `status`, if given) listed before sequence `before`, newest first."""
        stream, subject = list_subject(tenant, status)
        records: list[JobRecord] = []
        seen: set[str] = set()
        resume = before
        for scan_number in range(MAX_SCANS):
            want = limit - len(records)
            scan = await self.newest_before(stream, subject, before=resume, count=want + 1)
            candidates = scan.messages[:want]
            for record in await _records(self._nc, candidates):
                if record is not None and record.id not in seen and (status is None or record.status == status):
                    seen.add(record.id)
                    records.append(record)
            if candidates:
                resume = candidates[-1].seq
            if len(scan.messages) > want:
                # More entries follow: done if the page is full, else some were stale and are replaced.
                if len(records) >= limit or scan_number == MAX_SCANS - 1:
                    return Page(records, resume)
                continue
            if scan.resume_before is None:
                return Page(records, None)
            resume = scan.resume_before if resume is None else min(resume, scan.resume_before)
            if len(records) >= limit:
                break
        return Page(records, resume)

    async def newest_before(self, stream: str, subject: str, *, before: int | None, count: int) -> Scan:
        """Up to `count` entries on `subject` with a sequence below `before` (None: the newest), newest first.

        Which entries a window holds is read, never inferred: a batch asks for one entry more than it can
        use, so a window holds too many exactly when that extra entry is below `hi`. The counts (which
        entries arriving or leaving meanwhile can skew) only size the next window.
        """
        nc = self._nc
        above: int | None
        if before is None:
            last = await get_last(nc, stream, subject)
            if last is None:
                return Scan([], None)
            hi, above = last.seq + 1, 0
        else:
            # Entries at or after `hi` are counted only if a window must be narrowed: a dense list never asks.
            hi, above = before, None
        top = hi
        found: list[StoredMessage] = []
        width = self._first_width(subject, count)
        for _ in range(MAX_ROUNDS):
            need = count - len(found)
            if hi <= 1:
                return self._scanned(subject, found, top, hi, resume_before=None)
            lo = max(1, hi - width)
            # Up to twice what is still wanted: a window a little too wide still holds its newest entries.
            batch = await get_batch(nc, stream, subject, start_seq=lo, count=READ_FACTOR * need + 1)
            window = [m for m in batch.messages if m.seq < hi]
            if len(window) > READ_FACTOR * need:
                # Far too wide: aim a narrower window at the newest entries; `hi` stays.
                if above is None:
                    above = (await get_batch(nc, stream, subject, start_seq=hi, count=1)).matching
                held = max(batch.matching - above, len(window))
                width = max(1, min(hi - lo - 1, int((hi - lo) * need * NARROW_AIM / held)))
                continue
            if len(window) >= need:
                found[:0] = window[-need:]
                return self._scanned(subject, found, top, found[0].seq, resume_before=found[0].seq)
            found[:0] = window
            if lo == 1:
                return self._scanned(subject, found, top, lo, resume_before=None)
            # Still short: the next window, sized by the density this one showed.
            density = len(window) / (hi - lo)
            wanted = need - len(window)
            width = int(wanted / density * FIRST_WIDTH_SLACK) + 1 if density else width * WIDEN
            hi, above = lo, batch.matching
        return self._scanned(subject, found, top, hi, resume_before=hi)

    def _first_width(self, subject: str, count: int) -> int:
        density = self._density.get(subject, 1.0)
        return max(count, min(MAX_FIRST_WIDTH, int(count / density * FIRST_WIDTH_SLACK)))

    def _scanned(
        self, subject: str, found: list[StoredMessage], top: int, bottom: int, *, resume_before: int | None
    ) -> Scan:
        """The scan's result; what it covered teaches the density of `subject` for the next first window."""
        covered = top - bottom
        if found and covered >= len(found):
            self._density[subject] = len(found) / covered
        return Scan(found[::-1], resume_before)


async def _records(nc: Client, messages: list[StoredMessage]) -> list[JobRecord | None]:
    """The current record of each entry's job (None for an unreadable entry or a job that is gone), in one read."""
    job_ids: list[str | None] = []
    for message in messages:
        try:
            job_ids.append(decode_list_entry(message.data).job_id)
        except SchemaError:
            job_ids.append(None)
    subjects = sorted({names.kv_subject(names.JOBS_BUCKET, job_id) for job_id in job_ids if job_id is not None})
    found: dict[str, JobRecord] = {}
    for stored in await get_last_for(nc, names.kv_stream(names.JOBS_BUCKET), subjects):
        # A deleted or purged key's newest message is an empty marker.
        if stored.data:
            with contextlib.suppress(SchemaError):
                record = decode_record(stored.data)
                found[record.id] = record
    return [found.get(job_id) if job_id is not None else None for job_id in job_ids]
