"""The diarization worker's heartbeat: who it is and what it is doing, written to the `jetscribe_diarizers` KV
bucket every few seconds (`/health` lists the live ones). The bucket's TTL removes a worker that stops writing; a
clean stop deletes its key at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Final

from nats.errors import Error as NatsError
from nats.js.errors import NoStreamResponseError
from nats.js.kv import KeyValue

from jetscribe.stage.outcome import utcnow
from schemas import DiarizerHeartbeat, encode

log = logging.getLogger(__name__)

MAX_INTERVAL_S: Final = 5.0


class DiarizerHeartbeatWriter:
    """Writes a DiarizerHeartbeat under the worker's id until cancelled; `run()` is its task."""

    def __init__(
        self,
        bucket: KeyValue,
        *,
        worker_id: str,
        encoder: str,
        ttl_s: float,
        current_jobs: Callable[[], list[str]],
        jobs_done: Callable[[], int],
        reopen: Callable[[], Awaitable[KeyValue]],
    ) -> None:
        """`reopen`: creates the bucket again when it is gone (a single nats-server keeps it in memory)."""
        self._bucket = bucket
        self._reopen = reopen
        self._worker_id = worker_id
        self._encoder = encoder
        # Well inside the TTL, so one lost write never makes a live worker vanish.
        self.interval_s = min(MAX_INTERVAL_S, ttl_s / 3)
        self._current_jobs = current_jobs
        self._jobs_done = jobs_done
        self._host = socket.gethostname()
        self._started_at = utcnow()
        self._started = time.monotonic()

    async def beat(self) -> DiarizerHeartbeat:
        """Write one heartbeat now; returns what was written."""
        heartbeat = DiarizerHeartbeat(
            worker_id=self._worker_id,
            host=self._host,
            pid=os.getpid(),
            encoder=self._encoder,
            current_jobs=self._current_jobs(),
            jobs_done=self._jobs_done(),
            started_at=self._started_at,
            uptime_s=round(time.monotonic() - self._started, 1),
            sent_at=utcnow(),
        )
        await self._bucket.put(self._worker_id, encode(heartbeat))
        return heartbeat

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except NoStreamResponseError:
                log.warning("heartbeat not written: the diarizers bucket is gone (NATS restarted?); creating it again")
                with contextlib.suppress(NatsError, TimeoutError):
                    self._bucket = await self._reopen()
            except (NatsError, TimeoutError) as exc:
                log.warning("heartbeat not written: %r", exc)
            await asyncio.sleep(self.interval_s)

    async def remove(self) -> None:
        """Delete this worker's key (clean stop)."""
        try:
            await self._bucket.delete(self._worker_id)
        except (NatsError, TimeoutError) as exc:
            log.warning("heartbeat key not deleted: %r", exc)
