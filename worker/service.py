"""The worker: consumes jobs from JetStream into its slots, one Whisper model per slot.

A worker serves one or more models (`WHISPER_MODEL=base,tiny.en`), each with `worker_slots` slots of its own,
fed from that model's jobs (`jetscribe.jobs.<model token>.<tenant>`, one durable consumer per tenant) through a
`FairQueue` that shares the model's slots fairly between tenants: a slot only ever receives jobs its model can
run. Beside the slots runs the router (`worker.router`), which moves jobs from the subject that names no model
onto their model's subject.

Start-up (`__aenter__`): topology, models (loaded and warmed), the heartbeat, the router's consumer, the cancel
subscription, one `FairQueue` per model, then the loops. Shutdown (`stop`) in this order: stop fetching (every
slot of every model, and the router), give running jobs up to `shutdown_grace_s`, abort the rest and hand them
back (published again on their model's subject, so another worker takes them at once), stop the dead-letter
loop and the heartbeat, close the subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from jetscribe.config import Settings
from jetscribe.errors import FfmpegMissingError
from jetscribe.ffmpeg import ffmpeg_binary
from jetscribe.jobqueue import ensure_consumers
from jetscribe.jobstore import JobStore
from jetscribe.offer import OfferReader
from jetscribe.stage.budget import AudioBudget
from jetscribe.stage.cancel import abort_requested, unsubscribe
from jetscribe.stage.deadletter import DeadLetterHandler
from jetscribe.stage.decode import slot_budget
from jetscribe.stage.fetch import AudioDownloader
from jetscribe.topology import ensure_topology, workers_bucket
from schemas import names
from schemas.workers import ServedModel
from worker.engine import Engine, engine_spec, load_engines
from worker.fairshare import FairQueue
from worker.heartbeat import Heartbeat
from worker.router import JobRouter
from worker.runner import JobRunner

log = logging.getLogger(__name__)

ABORT_WAIT_S: Final = 30.0
TAKE_WAIT_S: Final = 10.0
"""How long stopping waits for slots still taking a job (a few requests, each answered at once)."""


@dataclass(frozen=True, slots=True)
class _Model:
    """One model this worker serves: its engines (one per slot) and what the heartbeat says of it."""

    name: str
    engines: list[Engine]

    def served(self, jobs_done: int) -> ServedModel:
        first = self.engines[0]
        return ServedModel(
            name=self.name,
            multilingual=first.multilingual,
            quantization=first.quantization,
            engine=first.kind,
            compute_type=first.compute_type,
            batch_size=first.batch_size,
            slots=len(self.engines),
            busy_slots=sum(engine.lock.locked() for engine in self.engines),
            jobs_done=jobs_done,
        )


async def _until_set(event: asyncio.Event, work: Coroutine[Any, Any, object]) -> None:
    """Await `work`, or stop (cancelling it) as soon as `event` is set."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, waiter):
            pending.cancel()
        await asyncio.gather(task, waiter, return_exceptions=True)


class Worker:
    """A transcription worker on an open NATS connection; use as `async with Worker(settings, nc):`."""

    def __init__(self, settings: Settings, nc: Client, *, worker_id: str | None = None) -> None:
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._state = "new"
        self._stack = contextlib.AsyncExitStack()
        self._stop_fetching = asyncio.Event()
        self._fetching_slots = 0
        self._fetching_over = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: JobRunner | None = None
        self._models: list[_Model] = []
        self._slot_tasks: list[asyncio.Task[None]] = []
        self._main: asyncio.Task[None] | None = None

    @property
    def jobs_done(self) -> int:
        """Jobs this worker has completed (status done)."""
        return self._runner.jobs_done.total() if self._runner else 0

    @property
    def models(self) -> list[ServedModel]:
        """The models this worker serves, with their slots and jobs done, as its heartbeat reports them."""
        done = self._runner.jobs_done if self._runner else {}
        return [model.served(done.get(model.name, 0)) for model in self._models]

    @property
    def current_jobs(self) -> list[str]:
        return list(self._runner.running) if self._runner else []

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"this Worker is {self._state}; create a new one")
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
        # Locate ffmpeg once, off the loop (a PATH search); a missing one fails each job with the reason.
        with contextlib.suppress(FfmpegMissingError):
            await asyncio.to_thread(ffmpeg_binary)
        for name in settings.served_models:
            self._models.append(await self._load(name))
        downloader = await self._stack.enter_async_context(
            AudioDownloader(
                max_bytes=settings.max_audio_url_bytes,
                timeout_s=settings.fetch_timeout_s,
                allow_private=settings.allow_private_targets,
            )
        )
        runner = JobRunner(settings, self._nc, store, topology.audio, downloader, worker_id=self.worker_id)
        self._runner = runner
        # The device probe reads /proc/cpuinfo and initialises NVML: blocking, so off the event loop.
        heartbeat = await asyncio.to_thread(
            Heartbeat,
            topology.workers,
            worker_id=self.worker_id,
            ttl_s=settings.worker_heartbeat_ttl_s,
            use_gpu=settings.use_gpu,
            models=lambda: self.models,
            current_jobs=lambda: self.current_jobs,
            jobs_done=lambda: self.jobs_done,
            reopen=lambda: workers_bucket(self._js, settings),
        )
        self._stack.push_async_callback(heartbeat.remove)
        # Written before the router starts, so that this worker's own models are on offer to it.
        await heartbeat.beat()
        await ensure_consumers(self._js, settings, [model.name for model in self._models])
        cancels = await self._nc.subscribe(names.CANCEL_WILDCARD, cb=self._on_cancel)
        self._stack.push_async_callback(unsubscribe, cancels)
        slots: list[tuple[Engine, FairQueue]] = []
        for model in self._models:
            queue = await self._stack.enter_async_context(FairQueue(self._nc, settings, model.name))
            slots.extend((engine, queue) for engine in model.engines)
        router = JobRouter(self._js, store, OfferReader(self._js, topology.workers, settings), settings)
        dead_letters = DeadLetterHandler(self._js, store, audio=None if settings.keep_audio else topology.audio)
        self._main = asyncio.create_task(self._run(runner, slots, heartbeat, router, dead_letters))

    async def _load(self, name: str) -> _Model:
        """Resolve model `name` (importing or quantizing it on first use) and load one warmed engine per slot."""
        spec = await asyncio.to_thread(engine_spec, self.settings, name)
        engines = await load_engines(spec, self.settings.worker_slots)
        for engine in engines:
            self._stack.push_async_callback(engine.aclose)
        first = engines[0]
        log.info(
            "worker %s: %d × %s loaded and warmed up on %s (%s, batch %d) from %s",
            self.worker_id, len(engines), name, first.kind, first.compute_type or first.quantization,
            first.batch_size, spec.path,
        )  # fmt: skip
        return _Model(name=name, engines=engines)

    async def _run(
        self,
        runner: JobRunner,
        slots: list[tuple[Engine, FairQueue]],
        heartbeat: Heartbeat,
        router: JobRouter,
        dead_letters: DeadLetterHandler,
    ) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._beat(heartbeat))
            tg.create_task(dead_letters.run(self._stop_fetching))
            tg.create_task(router.run(self._stop_fetching))
            self._slot_tasks = [tg.create_task(self._slot(runner, engine, queue)) for engine, queue in slots]

    async def _beat(self, heartbeat: Heartbeat) -> None:
        beating = asyncio.create_task(heartbeat.run())
        try:
            await self._closing.wait()
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _slot(self, runner: JobRunner, engine: Engine, queue: FairQueue) -> None:
        """Feed one engine: a job is taken when the engine is free or about to be, so the next job's
        audio is fetched and decoded while the current one transcribes (at most one job waits); both
        jobs' decoded audio comes out of one budget of `max_audio_s`."""
        budget = slot_budget(self.settings.max_audio_s)
        self._fetching_slots += 1
        try:
            async with asyncio.TaskGroup() as jobs:
                try:
                    await self._feed(runner, engine, budget, queue, jobs)
                finally:
                    self._fetching_slots -= 1
                    if self._fetching_slots == 0:
                        self._fetching_over.set()
        finally:
            # The model must not be freed while an aborted transcription still runs on it.
            await asyncio.shield(engine.idle())

    async def _feed(
        self,
        runner: JobRunner,
        engine: Engine,
        budget: AudioBudget,
        queue: FairQueue,
        jobs: asyncio.TaskGroup,
    ) -> None:
        """Take jobs for one slot until the worker stops fetching (its jobs go on in `jobs`)."""
        stopping = self._stop_fetching
        while not stopping.is_set():
            # The ack timer starts at delivery: take a job only when the engine is nearly free.
            await _until_set(stopping, engine.nearly_free(self.settings.prefetch_lead_s))
            if stopping.is_set():
                break
            msg = await queue.take(stopping)
            if msg is None:
                continue
            if stopping.is_set():
                # Fetched as the worker began to stop: another worker can start it right away.
                await msg.nak()
                break
            holds_engine = asyncio.Event()
            jobs.create_task(runner.run(msg, engine, budget, on_engine=holds_engine.set))
            await _until_set(stopping, holds_engine.wait())

    async def wait(self) -> None:
        """Return when the worker's loops have ended: after `stop()`, or at once if one failed (raising its error)."""
        if self._main is None:
            raise RuntimeError("the Worker is not running: use it as `async with`")
        await asyncio.shield(self._main)

    async def _on_cancel(self, msg: Msg) -> None:
        abort_requested(msg, self._runner.running if self._runner else {}, "job")

    async def stop(self) -> None:
        """Stop taking jobs, let running ones finish within the grace period, hand back the rest."""
        if self._state in ("stopping", "closed"):
            return
        self._state = "stopping"
        try:
            self._stop_fetching.set()
            if self._slot_tasks:
                _, unfinished = await asyncio.wait(self._slot_tasks, timeout=self.settings.shutdown_grace_s)
                if unfinished and self._fetching_slots:
                    # A hand-back publishes its job again: no slot of this worker may still be taking a job
                    # that could be it (and keep it, unacked, until its ack deadline).
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._fetching_over.wait(), TAKE_WAIT_S)
                if unfinished and self._runner is not None:
                    for job_id, abort in list(self._runner.running.items()):
                        log.info("handing back job %s", job_id)
                        abort.trigger("handback")
                    _, stuck = await asyncio.wait(unfinished, timeout=ABORT_WAIT_S)
                    for task in stuck:
                        task.cancel()
            self._closing.set()
            if self._main is not None:
                await self._main
        finally:
            self._state = "closed"
            await self._stack.aclose()
