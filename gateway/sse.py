"""`GET /jobs/{id}/stream`: a job's progress as Server-Sent Events, ending with `done` and the full job.

Order matters for a client that arrives late: subscribe first, then read the KV snapshot, so no
event falls between the two; events already covered by the snapshot are skipped by their `seq`.
Progress events carry `id: <seq>`; a client that reconnects with `Last-Event-ID` gets only what
is newer, after an explicit `reset` event with the current state: what was published while it was away (progress
superseded by that state, and `segment` events, which the final `done` repeats in full) is not replayed. `seq`
grows across a job's attempts (the worker starts attempt n at (n − 1) × 1,000,000), so a retried job's events are
newer than anything of an earlier attempt. The stream re-reads KV every `sse_recheck_s` and after a NATS
reconnect, so a terminal event lost in an outage still ends the stream.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response
from nats.errors import Error as NatsError

from gateway import keys
from gateway.auth import caller_of
from gateway.fanout import HubClosing, JobItem
from gateway.jobs import full_job, job_id_of, load_record, shown_to
from jetscribe.errors import TranscriptMissingError
from jetscribe.jobstore import JobStore
from schemas import JobRecord, ProgressEvent, SegmentEvent, TerminalEvent, encode
from schemas.api import StreamDone

log = logging.getLogger(__name__)

TRUE_VALUES: Final = frozenset({"1", "true", "yes"})
CLIENT_CHECK_S: Final = 0.5
"""How soon a stream whose client went away notices it (and releases its share of the subscription)."""


@dataclass
class _Cursor:
    """What this client has been sent so far."""

    seq: int
    percent: int
    diarizing: bool = False
    """`percent` is of the diarization stage, which counts 0–100 again after transcription's."""


async def stream_job(request: web.Request) -> web.StreamResponse:
    """The job's events: current state at once, live `progress`, then `done` with the full job; then close."""
    app = request.app
    settings = app[keys.SETTINGS]
    store = app[keys.JOB_STORE]
    job_id = job_id_of(request)
    metrics = app[keys.METRICS]
    async with app[keys.HUB].follow(job_id) as events:
        record = await load_record(store, job_id, caller_of(request))
        headers = {"X-Accel-Buffering": "no"}
        async with sse_response(request, ping_interval=settings.sse_heartbeat_s, headers=headers) as sse:
            metrics.sse_clients.inc()
            try:
                await _JobStream(request, sse, events).run(record)
            except ConnectionError:
                log.debug("job %s: event stream client went away", job_id)
            except (TimeoutError, NatsError) as exc:
                # A stalled client, or NATS gone mid-stream: the headers are out, so no error response can
                # follow; ending the stream lets the client reconnect with Last-Event-ID.
                log.warning("job %s: event stream ended early: %r", job_id, exc)
            finally:
                metrics.sse_clients.dec()
    return sse


class _JobStream:
    """One client's stream of one job."""

    def __init__(self, request: web.Request, sse: EventSourceResponse, events: asyncio.Queue[JobItem]) -> None:
        self._request = request
        self._sse = sse
        self._events = events
        self._store = request.app[keys.JOB_STORE]
        self._nc = request.app[keys.NC]
        self._recheck_s = request.app[keys.SETTINGS].sse_recheck_s
        self._with_segments = request.query.get("segments", "").lower() in TRUE_VALUES
        self._resume_from = _last_event_id(request)
        self._cursor = _Cursor(seq=self._resume_from or 0, percent=-1)

    async def run(self, record: JobRecord) -> None:
        if record.is_terminal:
            await self._send_done(record)
            return
        await self._send_snapshot(record, reset=self._resume_from is not None)
        job_id = record.id
        loop = asyncio.get_running_loop()
        reconnects = self._nc.stats["reconnects"]
        rechecked_at = loop.time()
        while not _client_gone(self._request):
            item = await self._next(min(self._recheck_s, CLIENT_CHECK_S))
            if isinstance(item, HubClosing):
                return
            if loop.time() - rechecked_at >= self._recheck_s or self._nc.stats["reconnects"] != reconnects:
                reconnects = self._nc.stats["reconnects"]
                rechecked_at = loop.time()
                if await self._recheck(job_id):
                    return
            if isinstance(item, TerminalEvent):
                await self._send_done(await _terminal_record(self._store, item))
                return
            if item is not None:
                await self._send_live(item)

    async def _next(self, timeout_s: float) -> JobItem | None:
        """The next queued event, or None after `timeout_s` without one."""
        # Under load the queue is rarely empty: skip wait_for, which costs a task per call.
        if not self._events.empty():
            return self._events.get_nowait()
        try:
            return await asyncio.wait_for(self._events.get(), timeout_s)
        except TimeoutError:
            return None

    async def _recheck(self, job_id: str) -> bool:
        """Re-read KV: catch a terminal state whose event was missed, and progress missed in an outage."""
        current = await self._store.get(job_id)
        if current is None:
            log.warning("job %s disappeared while streaming its events", job_id)
            return True
        if current.record.is_terminal:
            await self._send_done(current.record)
            return True
        diarizing = current.record.status == "diarizing"
        if diarizing != self._cursor.diarizing or current.record.progress > self._cursor.percent:
            await self._send_snapshot(current.record)
        return False

    async def _send_live(self, item: ProgressEvent | SegmentEvent) -> None:
        if item.seq <= self._cursor.seq:
            return
        self._cursor.seq = item.seq
        if isinstance(item, ProgressEvent):
            diarizing = item.stage == "diarizing"
            if diarizing != self._cursor.diarizing or item.percent >= self._cursor.percent:
                self._cursor.percent, self._cursor.diarizing = item.percent, diarizing
                await self._sse.send(encode(item).decode(), id=str(item.seq), event="progress")
        elif self._with_segments:
            await self._sse.send(encode(item).decode(), id=str(item.seq), event="segment")

    async def _send_snapshot(self, record: JobRecord, *, reset: bool = False) -> None:
        """The KV state as a progress event; `seq` 0 and no `id`, since it is not one of the worker's events.
        With `reset` (a reconnect with Last-Event-ID) it is a `reset` event: events may have been missed, this is
        where the job stands now."""
        diarizing = record.status == "diarizing"
        same_scale = diarizing == self._cursor.diarizing
        self._cursor.percent = max(self._cursor.percent, record.progress) if same_scale else record.progress
        self._cursor.diarizing = diarizing
        event = ProgressEvent(
            job_id=record.id,
            seq=0,
            percent=record.progress,
            stage="queued" if record.status == "queued" else "diarizing" if diarizing else "transcribing",
        )
        await self._sse.send(encode(event).decode(), event="reset" if reset else "progress")

    async def _send_done(self, ended: JobRecord | TerminalEvent) -> None:
        if isinstance(ended, JobRecord):
            job = await full_job(self._store, ended)
        else:
            job = ended.job
            if ended.transcript_object and job.status == "done":
                try:
                    job.segments = await self._store.get_transcript(ended.transcript_object)
                except TranscriptMissingError as exc:
                    log.warning("job %s: %s", job.id, exc)
        await self._sse.send(encode(StreamDone(job=shown_to(caller_of(self._request), job))).decode(), event="done")


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if not raw:
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        return None


async def _terminal_record(store: JobStore, event: TerminalEvent) -> JobRecord | TerminalEvent:
    """KV's record when it already shows the end; otherwise the event itself (KV may lag the event)."""
    current = await store.get(event.job.id)
    if current is not None and current.record.is_terminal:
        return current.record
    return event
