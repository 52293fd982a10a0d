"""The diarization worker: consumes the diarization stage's stream, one job at a time.

Diarization is CPU work (`diarizer.diarize`: seconds per audio minute, BENCHMARKS.md) that never holds a Whisper
slot: scale it by running more of these (`jetscribe diarizer`), each taking one job at a time from the shared
durable consumer `diarizers`. Start-up (`__aenter__`): topology, the speaker encoder (loaded and digest-checked), the
consumer, the cancel subscription, the loops (jobs, dead letters, heartbeat in `jetscribe_diarizers`). Shutdown
(`stop`): stop fetching, give the running job up to `shutdown_grace_s`, then abort it and hand it back (nak: another
diarization worker takes it at once), stop the dead-letter loop and the heartbeat (its key deleted), close the
subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from types import TracebackType
from typing import Final, Self

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from diarization.heartbeat import DiarizerHeartbeatWriter
from diarization.runner import DiarizationRunner
from diarizer import Diarizer
from jetscribe.config import Settings
from jetscribe.jobqueue import diarizers_consumer_config
from jetscribe.jobstore import JobStore
from jetscribe.stage.cancel import abort_requested, unsubscribe
from jetscribe.stage.deadletter import DeadLetterHandler, diarize_deadletter_config
from jetscribe.stage.fetch import AudioDownloader
from jetscribe.topology import diarizers_bucket, ensure_topology
from schemas import names

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S: Final = 1.0
FETCH_RETRY_S: Final = 1.0
ABORT_WAIT_S: Final = 30.0


class DiarizationWorker:
    """A diarization worker on an open NATS connection; use as `async with DiarizationWorker(settings, nc):`.

    `diarizer`: the loaded diarizer to use (tests share one); None loads `Diarizer.load()` at start-up.
    """

    def __init__(
        self, settings: Settings, nc: Client, *, diarizer: Diarizer | None = None, worker_id: str | None = None
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}-diarizer"
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._diarizer = diarizer
        self._state = "new"
        self._stack = contextlib.AsyncExitStack()
        self._stop_fetching = asyncio.Event()
        self._runner: DiarizationRunner | None = None
        self._main: asyncio.Task[None] | None = None
        self._jobs: asyncio.Task[None] | None = None

    @property
    def jobs_done(self) -> int:
        return self._runner.jobs_done if self._runner else 0

    @property
    def current_jobs(self) -> list[str]:
        return list(self._runner.running) if self._runner else []

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"this DiarizationWorker is {self._state}; create a new one")
        self._state = "starting"
        try:
            await self._start()
        except BaseException:
            self._state = "closed"
            await self._stack.aclose()
            raise
        self._state = "running"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _start(self) -> None:
        settings = self.settings
        topology = await ensure_topology(self._js, settings)
        store = JobStore(topology.jobs, topology.transcripts)
        # Reading and digest-checking the encoder's weights is blocking file work.
        diarizer = self._diarizer if self._diarizer is not None else await asyncio.to_thread(Diarizer.load)
        downloader = await self._stack.enter_async_context(
            AudioDownloader(
                max_bytes=settings.max_audio_url_bytes,
                timeout_s=settings.fetch_timeout_s,
                allow_private=settings.allow_private_targets,
            )
        )
        self._runner = DiarizationRunner(
            settings, self._nc, store, topology.audio, downloader, diarizer, worker_id=self.worker_id
        )
        await self._js.add_consumer(names.DIARIZE_STREAM, diarizers_consumer_config(settings))
        cancels = await self._nc.subscribe(names.CANCEL_WILDCARD, cb=self._on_cancel)
        self._stack.push_async_callback(unsubscribe, cancels)
        sub = await self._js.pull_subscribe_bind(names.DIARIZERS_CONSUMER, names.DIARIZE_STREAM)
        self._stack.push_async_callback(unsubscribe, sub)
        dead_letters = DeadLetterHandler(
            self._js, store, audio=None if settings.keep_audio else topology.audio, config=diarize_deadletter_config()
        )
        heartbeat = DiarizerHeartbeatWriter(
            await diarizers_bucket(self._js, settings),
            worker_id=self.worker_id,
            encoder=diarizer.encoder.name,
            ttl_s=settings.worker_heartbeat_ttl_s,
            current_jobs=lambda: self.current_jobs,
            jobs_done=lambda: self.jobs_done,
            reopen=lambda: diarizers_bucket(self._js, settings),
        )
        self._main = asyncio.create_task(self._run(self._runner, sub, dead_letters, heartbeat))

    async def _run(
        self,
        runner: DiarizationRunner,
        sub: JetStreamContext.PullSubscription,
        dead_letters: DeadLetterHandler,
        heartbeat: DiarizerHeartbeatWriter,
    ) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(dead_letters.run(self._stop_fetching))
            beating = tg.create_task(heartbeat.run())
            self._jobs = tg.create_task(self._feed(runner, sub))
            await asyncio.wait({self._jobs})  # ends however the job loop ends (stop() may cancel a stuck one)
            # No more jobs: the heartbeat stops and its key goes, so /health drops this worker at once.
            beating.cancel()
        await heartbeat.remove()

    async def _feed(self, runner: DiarizationRunner, sub: JetStreamContext.PullSubscription) -> None:
        """One job at a time until the worker stops fetching."""
        while not self._stop_fetching.is_set():
            msg = await self._fetch(sub)
            if msg is None:
                continue
            if self._stop_fetching.is_set():
                await msg.nak()
                break
            await runner.run(msg)

    async def _fetch(self, sub: JetStreamContext.PullSubscription) -> Msg | None:
        try:
            messages = await sub.fetch(1, timeout=FETCH_TIMEOUT_S)
        except TimeoutError:
            return None
        except NatsError as exc:
            log.warning("fetching a diarization job failed: %r", exc)
            await asyncio.sleep(FETCH_RETRY_S)
            return None
        return messages[0] if messages else None

    async def wait(self) -> None:
        """Return when the loops have ended: after `stop()`, or at once if one failed (raising its error)."""
        if self._main is None:
            raise RuntimeError("the DiarizationWorker is not running: use it as `async with`")
        await asyncio.shield(self._main)

    async def _on_cancel(self, msg: Msg) -> None:
        abort_requested(msg, self._runner.running if self._runner else {}, "the diarization of job")

    async def stop(self) -> None:
        """Stop taking jobs, let the running one finish within the grace period, hand it back otherwise."""
        if self._state in ("stopping", "closed"):
            return
        self._state = "stopping"
        try:
            self._stop_fetching.set()
            if self._jobs is not None:
                _, unfinished = await asyncio.wait({self._jobs}, timeout=self.settings.shutdown_grace_s)
                if unfinished and self._runner is not None:
                    for job_id, abort in list(self._runner.running.items()):
                        log.info("handing back the diarization of job %s", job_id)
                        abort.trigger("handback")
                    _, stuck = await asyncio.wait(unfinished, timeout=ABORT_WAIT_S)
                    for task in stuck:
                        task.cancel()
            if self._main is not None:
                await self._main
        finally:
            self._state = "closed"
            await self._stack.aclose()
