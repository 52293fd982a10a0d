"""Reading and cancelling jobs: `GET /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/transcript`, `DELETE /jobs/{id}`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final, cast, get_args

import msgspec
from aiohttp import web
from nats.errors import Error as NatsError
from nats.js.errors import APIError, ObjectNotFoundError

from gateway import keys
from gateway.auth import caller_of
from gateway.errors import (
    ForbiddenError,
    ResourceNotFoundError,
    StateConflictError,
    UnavailableError,
    UnprocessableError,
)
from gateway.joblist.cursor import decode_cursor, encode_cursor
from gateway.publish import publish_durably
from gateway.tenants import Caller
from gateway.transcripts import (
    CONTENT_TYPES,
    FORMATS,
    MAX_CUE_S,
    MAX_LINE_CHARS,
    MIN_CUE_S,
    MIN_LINE_CHARS,
    CueLayout,
    TranscriptFormat,
    render,
)
from jetscribe.errors import DirectGetError, JetscribeError, TranscriptMissingError
from jetscribe.jobstore import JobStore, Versioned
from schemas import CancelRequest, Job, JobRecord, JobStatus, Segment, TerminalEvent, encode, names
from schemas.api import JobList

log = logging.getLogger(__name__)

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 500
STATUSES: Final[tuple[JobStatus, ...]] = get_args(JobStatus)


def job_id_of(request: web.Request) -> str:
    return request.match_info["job_id"]


async def load_record(store: JobStore, job_id: str, caller: Caller) -> JobRecord:
    """The job's record; 404 when there is none or it belongs to a tenant `caller` does not see (the same
    answer, so a caller cannot tell another tenant's job from one that does not exist)."""
    found = await store.get(job_id)
    if found is None or not caller.sees(found.record.tenant):
        raise ResourceNotFoundError(f"no job with id {job_id!r} (unknown, or expired after the retention period)")
    return found.record


def shown_to(caller: Caller, job: Job) -> Job:
    """`job` as `caller` may see it: an admin sees another tenant's job without its webhook, whose URL may carry
    that tenant's token."""
    if job.webhook is not None and job.tenant != caller.tenant:
        job.webhook = None
    return job


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
    caller = caller_of(request)
    return json_response(shown_to(caller, await full_job(store, await load_record(store, job_id_of(request), caller))))


async def get_transcript(request: web.Request) -> web.Response:
    """The finished transcript as `txt`, `srt`, `vtt`, `tsv` or `json` (`?format=`, default `txt`); subtitles
    shaped by `?max_line_chars=` and `?max_cue_s=`."""
    fmt = request.query.get("format", "txt")
    if fmt not in FORMATS:
        raise UnprocessableError(f"format {fmt!r} is not supported: use one of {', '.join(FORMATS)}")
    layout = _cue_layout(request)
    store = request.app[keys.JOB_STORE]
    job_id = job_id_of(request)
    record = await load_record(store, job_id, caller_of(request))
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
        body=render(segments, cast(TranscriptFormat, fmt), layout),
        content_type=CONTENT_TYPES[fmt],
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{job_id}.{fmt}"'},
    )


def _cue_layout(request: web.Request) -> CueLayout:
    """`max_line_chars` (an integer, 10–200) and `max_cue_s` (seconds, 1–60) from the query; 422 naming the one
    out of range."""

    def number(name: str, kind: type[int] | type[float], low: float, high: float) -> float | None:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            what = "a whole number" if kind is int else "a number"
            raise UnprocessableError(f"`{name}` must be {what} from {low:g} to {high:g} (got {raw!r})")
        return value

    line = number("max_line_chars", int, MIN_LINE_CHARS, MAX_LINE_CHARS)
    return CueLayout(
        max_line_chars=None if line is None else int(line), max_cue_s=number("max_cue_s", float, MIN_CUE_S, MAX_CUE_S)
    )


async def list_jobs(request: web.Request) -> web.Response:
    """The caller's jobs, newest first; `?status=` filters, `?limit=` (1–500, default 50) and `?cursor=` page.
    An admin sees every tenant's jobs, or one tenant's with `?tenant=`.

    A page costs what it holds: it is read from the job-list streams (`gateway.joblist`), newest
    submission first, or newest arrival in a status with `?status=`. Paging with `next_cursor` returns
    each job once, in order, while new jobs arrive (they come before the first page).
    """
    status = _status(request.query.get("status") or None)
    limit = _limit(request.query.get("limit"))
    caller = caller_of(request)
    tenant = _listed_tenant(caller, request.query.get("tenant") or None)
    before = decode_cursor(request.query.get("cursor"), status)
    try:
        page = await request.app[keys.JOB_LIST_READER].page(tenant=tenant, status=status, before=before, limit=limit)
    except DirectGetError as exc:
        raise UnavailableError(f"the job list cannot be read: {exc}") from exc
    next_cursor = encode_cursor(page.resume_before, status) if page.resume_before is not None else None
    jobs = [shown_to(caller, r.to_job()) for r in page.records if caller.sees(r.tenant)]
    return json_response(JobList(jobs=jobs, next_cursor=next_cursor))


def _listed_tenant(caller: Caller, asked: str | None) -> str:
    """Whose list to read: the caller's own tenant; an admin's `?tenant=`, or every tenant."""
    if not caller.admin:
        if asked is not None and asked != caller.tenant:
            raise ForbiddenError(
                f"only an admin key lists another tenant's jobs; this key's tenant is {caller.tenant!r}"
            )
        return caller.tenant
    if asked is None:
        return names.ALL_TENANTS
    if not names.TENANT_RE.fullmatch(asked):
        raise UnprocessableError(f"tenant {asked!r} is not a tenant name: 1–64 characters of A–Z, a–z, 0–9, _ and -")
    return asked


def _status(raw: str | None) -> JobStatus | None:
    if raw is None:
        return None
    for status in STATUSES:
        if raw == status:
            return status
    raise UnprocessableError(f"status {raw!r} is not a job status: use one of {', '.join(STATUSES)}")


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


async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a queued job at once (compare-and-set) or ask the worker running it to abort: 204; finished: 409."""
    await cancel(request.app, job_id_of(request), caller_of(request))
    return web.Response(status=204)


async def cancel(app: web.Application, job_id: str, caller: Caller) -> JobStatus:
    """Cancel a queued job at once or ask the worker running it to abort; returns the status it was cancelled in.
    404 for an unknown job or another tenant's, 409 for one that has finished."""
    store = app[keys.JOB_STORE]
    await load_record(store, job_id, caller)
    now = datetime.now(UTC)
    seen: list[JobStatus] = []

    def cancel(record: JobRecord) -> JobRecord | None:
        seen.append(record.status)
        if record.status == "queued":
            return msgspec.structs.replace(record, status="cancelled", completed_at=now, error="cancelled by request")
        if record.status in ("running", "diarizing"):
            return msgspec.structs.replace(record, cancel_requested=True)
        return None

    changed = await store.transition(job_id, cancel)
    after = changed.record
    was = seen[-1]
    if was == "queued":
        await _list_cancelled(app, changed)
        await _announce_cancelled(app, after, now)
    elif was in ("running", "diarizing"):
        cancel_request = CancelRequest(job_id=job_id, requested_at=now)
        await app[keys.NC].publish(names.cancel_subject(job_id), encode(cancel_request))
        await app[keys.NC].flush()
    else:
        raise StateConflictError(
            f"job {job_id} has already finished ({after.status}); only queued, running or diarizing jobs cancel"
        )
    log.info("job %s: cancelled while %s", job_id, was)
    return was


async def _list_cancelled(app: web.Application, changed: Versioned) -> None:
    """Move the job to the cancelled list now, so the caller's next list shows it (the indexer would, shortly)."""
    try:
        await app[keys.JOB_LIST].reflect(changed.record, changed.revision)
    except (NatsError, TimeoutError, JetscribeError) as exc:
        log.warning("job %s: listed as cancelled once the indexer catches up (%r)", changed.record.id, exc)


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
