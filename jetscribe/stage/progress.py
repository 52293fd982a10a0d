"""A running job's progress: live events on its core progress subject, throttled writes into KV.

Whisper's callbacks fire on the whisper thread; they only hand events to the event loop
(`call_soon_threadsafe`), where one task publishes them in order. KV writes double as the
periodic check for a cancel the gateway recorded (`cancel_requested`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final, Literal

import msgspec
from nats.aio.client import Client
from nats.errors import Error as NatsError

from jetscribe.errors import JetscribeError
from jetscribe.jobstore import JobStore
from jetscribe.stage.abort import AbortSignal
from schemas import JobRecord, ProgressEvent, Segment, SegmentEvent, encode, names

log = logging.getLogger(__name__)

Stage = Literal["queued", "fetching", "decoding", "transcribing", "finishing", "diarizing"]
KV_INTERVAL_S: Final = 1.0
DECODED_PERCENT: Final = 10
"""Fetching and decoding fill the first 10 %; whisper's own progress maps onto 10–99 %."""
TRANSCRIBED_PERCENT: Final = 99
SEQ_PER_ATTEMPT: Final = 1_000_000
"""Attempt n's events are numbered from (n − 1) × this + 1: `seq` keeps growing when a job is retried, so a
follower holding the last attempt's `seq` takes the new attempt's events (a job's attempt publishes far fewer)."""


def first_seq(attempt: int) -> int:
    """The `seq_start` of attempt number `attempt` (1 for the first delivery)."""
    return max(0, attempt - 1) * SEQ_PER_ATTEMPT


class ProgressReporter:
    """Publishes one job's progress and segments; `run()` is its publishing task, `close()` ends it."""

    def __init__(
        self, nc: Client, store: JobStore, job_id: str, worker_id: str, abort: AbortSignal, *, seq_start: int = 0
    ) -> None:
        self._nc = nc
        self._store = store
        self._job_id = job_id
        self._worker_id = worker_id
        self._abort = abort
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[ProgressEvent | SegmentEvent | None] = asyncio.Queue()
        self._seq = seq_start
        self._stage: Stage = "queued"
        self._percent = 0
        self._written_stage: Stage | None = None
        self._written_at = 0.0

    def stage(self, stage: Stage, percent: int) -> None:
        """Enter `stage` at `percent` (event loop only)."""
        self._stage = stage
        self._emit(percent)

    def whisper_progress(self, percent: int) -> None:
        """Whisper's 0–100 callback (any thread)."""
        scaled = DECODED_PERCENT + (TRANSCRIBED_PERCENT - DECODED_PERCENT) * max(0, min(percent, 100)) // 100
        self._threadsafe(self._emit, scaled)

    def new_segment(self, segment: Segment) -> None:
        """Whisper's new-segment callback (any thread)."""
        self._threadsafe(self._emit_segment, segment)

    def close(self) -> None:
        """No more events; `run()` returns once the queue is drained (event loop only)."""
        self._queue.put_nowait(None)

    def _threadsafe(self, callback: object, arg: object) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, arg)  # type: ignore[arg-type]
        except RuntimeError:
            # The loop is closing: progress is best-effort, the final state is written elsewhere.
            pass

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _emit(self, percent: int) -> None:
        self._percent = max(self._percent, percent)
        event = ProgressEvent(job_id=self._job_id, seq=self._next_seq(), percent=self._percent, stage=self._stage)
        self._queue.put_nowait(event)

    def _emit_segment(self, segment: Segment) -> None:
        self._queue.put_nowait(SegmentEvent(job_id=self._job_id, seq=self._next_seq(), segment=segment))

    async def run(self) -> None:
        subject = names.progress_subject(self._job_id)
        while (event := await self._queue.get()) is not None:
            try:
                await self._nc.publish(subject, encode(event))
                if isinstance(event, ProgressEvent):
                    await self._maybe_write(event)
            except (NatsError, JetscribeError, TimeoutError) as exc:
                log.warning("progress of job %s not published: %r", self._job_id, exc)

    async def _maybe_write(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if event.stage == self._written_stage and now - self._written_at < KV_INTERVAL_S:
            return
        self._written_stage, self._written_at = event.stage, now
        percent = event.percent

        def update(record: JobRecord) -> JobRecord | None:
            if record.is_terminal or record.worker_id != self._worker_id or record.progress >= percent:
                return None
            return msgspec.structs.replace(record, progress=percent)

        after = await self._store.transition(self._job_id, update)
        if after.record.cancel_requested or after.record.is_terminal:
            self._abort.trigger("cancelled")
