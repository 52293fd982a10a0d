"""Reading and cancelling jobs: `GET /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/transcript`, `DELETE /jobs/{id}`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from datetime import UTC, datetime
from typing import Final, cast, get_args

import msgspec
from aiohttp import web
from nats.js.errors import APIError, NoKeysError, ObjectNotFoundError
from nats.js.kv import KeyValue

from gateway import keys
from gateway.errors import BadRequestError, ResourceNotFoundError, StateConflictError, UnprocessableError
from gateway.publish import publish_durably
from gateway.transcripts import CONTENT_TYPES, FORMATS, TranscriptFormat, render
from jetscribe.errors import TranscriptMissingError
from jetscribe.jobstore import JobStore
from schemas import CancelRequest, Job, JobRecord, JobStatus, Segment, TerminalEvent, encode, names
from schemas.api import JobList

log = logging.getLogger(__name__)

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 500
LIST_CONCURRENCY: Final = 32
STATUSES: Final[tuple[str, ...]] = get_args(JobStatus)


def job_id_of(request: web.Request) -> str:
    return request.match_info["job_id"]


async def load_record(store: JobStore, job_id: str) -> JobRecord:
    found = await store.get(job_id)
    if found is None:
        raise ResourceNotFoundError(f"no job with id {job_id!r} (unknown, or expired after the retention period)")
    return found.record


async def segments_of(store: JobStore, record: JobRecord) -> list[Segment]:
    """The transcript of a finished job; empty for any other status."""
    if record.status != "done":
        return []
    return await store.get_transcript(record.transcript_object or names.transcript_object(record.id))


async def full_job(store: JobStore, record: JobRecord) -> Job:
    """The job JSON with its segments when done (empty, and logged, if the transcript has expired)."""
    try:
        segments = await segments_of(store, record)
    except TranscriptMissingError as exc:
        log.warning("job %s: %s", record.id, exc)
        segments = []
    return record.to_job(segments)


def json_response(body: msgspec.Struct, *, status: int = 200) -> web.Response:
    return web.Response(status=status, body=encode(body), content_type="application/json")


async def get_job(request: web.Request) -> web.Response:
    """The job JSON: progress while running, segments once done."""
    store = request.app[keys.JOB_STORE]
    return json_response(await full_job(store, await load_record(store, job_id_of(request))))


async def get_transcript(request: web.Request) -> web.Response:
    """The finished transcript as `txt`, `srt`, `vtt` or `json` (`?format=`, default `txt`)."""
    fmt = request.query.get("format", "txt")
    if fmt not in FORMATS:
        raise UnprocessableError(f"format {fmt!r} is not supported: use one of {', '.join(FORMATS)}")
    store = request.app[keys.JOB_STORE]
    job_id = job_id_of(request)
    record = await load_record(store, job_id)
    if record.status != "done":
        detail = f": {record.error}" if record.error else f" ({record.progress}% done)" if record.progress else ""
        raise StateConflictError(
            f"job {job_id} is {record.status}{detail}; a transcript exists only once its status is done"
        )
    try:
        segments = await segments_of(store, record)
    except TranscriptMissingError as exc:
        raise ResourceNotFoundError(f"the transcript of job {job_id} is no longer available: {exc}") from exc
    return web.Response(
        body=render(segments, cast(TranscriptFormat, fmt)),
        content_type=CONTENT_TYPES[fmt],
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{job_id}.{fmt}"'},
    )


async def list_jobs(request: web.Request) -> web.Response:
    """Jobs, newest first; `?status=` filters, `?limit=` (1–500, default 50) and `?cursor=` page."""
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise UnprocessableError(f"status {status!r} is not a job status: use one of {', '.join(STATUSES)}")
    limit = _limit(request.query.get("limit"))
    after = _decode_cursor(request.query.get("cursor"))
    records = await _all_records(request.app[keys.JOB_STORE], request.app[keys.TOPOLOGY].jobs)
    matching = sorted(
        (r for r in records if status is None or r.status == status),
        key=_order_key,
        reverse=True,
    )
    if after is not None:
        matching = [r for r in matching if _order_key(r) < after]
    page = matching[:limit]
    next_cursor = _encode_cursor(page[-1]) if len(matching) > limit else None
    return json_response(JobList(jobs=[r.to_job() for r in page], next_cursor=next_cursor))


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise UnprocessableError(f"limit {raw!r} is not a whole number from 1 to {MAX_PAGE}")
    return limit


def _order_key(record: JobRecord) -> tuple[float, str]:
    return (record.created_at.timestamp(), record.id)


def _encode_cursor(record: JobRecord) -> str:
    created, job_id = _order_key(record)
    return base64.urlsafe_b64encode(f"{created!r}|{job_id}".encode()).decode()


def _decode_cursor(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    try:
        created, _, job_id = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
        return (float(created), job_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequestError(f"cursor {raw!r} is not one this API returned; pass `next_cursor` unchanged") from exc


async def _all_records(store: JobStore, bucket: KeyValue) -> list[JobRecord]:
    try:
        job_ids = await bucket.keys()
    except NoKeysError:
        return []
    limiter = asyncio.Semaphore(LIST_CONCURRENCY)

    async def one(job_id: str) -> JobRecord | None:
        async with limiter:
            found = await store.get(job_id)
        return found.record if found else None

    return [r for r in await asyncio.gather(*(one(j) for j in job_ids)) if r is not None]


async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a queued job at once (compare-and-set) or ask the worker running it to abort: 204; finished: 409."""
    app = request.app
    job_id = job_id_of(request)
    store = app[keys.JOB_STORE]
    await load_record(store, job_id)
    now = datetime.now(UTC)
    seen: list[JobStatus] = []

    def cancel(record: JobRecord) -> JobRecord | None:
        seen.append(record.status)
        if record.status == "queued":
            return msgspec.structs.replace(record, status="cancelled", completed_at=now, error="cancelled by request")
        if record.status == "running":
            return msgspec.structs.replace(record, cancel_requested=True)
        return None

    after = (await store.transition(job_id, cancel)).record
    was = seen[-1]
    if was == "queued":
        await _announce_cancelled(app, after, now)
    elif was == "running":
        cancel_request = CancelRequest(job_id=job_id, requested_at=now)
        await app[keys.NC].publish(names.cancel_subject(job_id), encode(cancel_request))
        await app[keys.NC].flush()
    else:
        raise StateConflictError(
            f"job {job_id} has already finished ({after.status}); only queued or running jobs cancel"
        )
    log.info("job %s: cancelled while %s", job_id, was)
    return web.Response(status=204)


async def _announce_cancelled(app: web.Application, record: JobRecord, now: datetime) -> None:
    event = TerminalEvent(type="cancelled", job=record.to_job(), occurred_at=now)
    try:
        await publish_durably(
            app[keys.JS],
            names.event_subject("cancelled", record.id),
            encode(event),
            msg_id=f"{record.id}:cancelled",
        )
    except APIError as exc:
        log.error("job %s: the cancelled event was refused by the events stream: %s", record.id, exc)
    if record.audio_object:
        # The worker skips a cancelled job without reading its audio: nothing needs it any more.
        try:
            await app[keys.TOPOLOGY].audio.delete(record.audio_object)
        except ObjectNotFoundError:
            pass
