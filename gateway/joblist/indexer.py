"""Keeping the job list current: a durable consumer on the jobs bucket's stream, shared by all gateways.

Every write of a job record is a message on `KV_jetscribe_jobs`; the indexer reads them in order and
has `JobListIndex.reflect` move the job's status entry when its status changed. Workers therefore
know nothing of the list: a job a worker starts, finishes, fails or hands back, and a job published
straight to NATS (whose record the worker creates), reaches the list through its record. The
consumer starts at the beginning of the bucket, so a first start lists the jobs already kept.

Within a batch only each job's newest message counts; the place's revision check makes a message
read late, or by two gateways at once, harmless. A job whose update fails is `nak`ed and comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Final, Literal, Self

from aiohttp import web
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api

from gateway import keys
from gateway.joblist.index import JobListIndex
from jetscribe.errors import JetscribeError
from schemas import SchemaError, names
from schemas.codec import decode_record

log = logging.getLogger(__name__)

BATCH: Final = 256
CONCURRENCY: Final = 32
FETCH_TIMEOUT_S: Final = 5.0
ACK_WAIT_S: Final = 30.0
MAX_ACK_PENDING: Final = 4096
RETRY_DELAY_S: Final = 1.0
BROKER_PAUSE_S: Final = 1.0
KV_OPERATION_HEADER: Final = "KV-Operation"
MARKER_REASON_HEADER: Final = "Nats-Marker-Reason"
REMOVALS: Final = frozenset({"DEL", "PURGE", "MaxAge", "Purge", "Remove"})


def consumer_config() -> api.ConsumerConfig:
    """The durable `job-list` consumer on the jobs bucket: every record change, from the first one kept."""
    return api.ConsumerConfig(
        durable_name=names.JOB_LIST_INDEXER_CONSUMER,
        description="Keeps the job list's status entries current, shared by all gateways",
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_deliver=-1,
        max_ack_pending=MAX_ACK_PENDING,
        filter_subject=names.kv_subject(names.JOBS_BUCKET),
    )


def job_id_of(msg: Msg) -> str:
    return msg.subject.removeprefix(names.kv_subject(names.JOBS_BUCKET, ""))


def is_removal(msg: Msg) -> bool:
    headers = msg.headers or {}
    return headers.get(KV_OPERATION_HEADER) in REMOVALS or headers.get(MARKER_REASON_HEADER) in REMOVALS


class JobListIndexer:
    """Pulls record changes and applies them to the job list until the context exits."""

    def __init__(self, js: JetStreamContext, index: JobListIndex) -> None:
        self._js = js
        self._index = index
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._state: Literal["new", "running", "closed"] = "new"
        self._sub: JetStreamContext.PullSubscription | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"JobListIndexer is {self._state}; create a new one to start again")
        self._state = "running"
        stream = names.kv_stream(names.JOBS_BUCKET)
        await self._js.add_consumer(stream, consumer_config())
        self._sub = await self._js.pull_subscribe_bind(durable=names.JOB_LIST_INDEXER_CONSUMER, stream=stream)
        self._loop_task = asyncio.create_task(self._run(), name="job-list indexer")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Stop pulling; a batch being applied is cancelled and comes back to another gateway after ack_wait.
        self._state = "closed"
        assert self._loop_task is not None and self._sub is not None
        self._loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop_task
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()

    async def _run(self) -> None:
        assert self._sub is not None
        while True:
            try:
                msgs = await self._sub.fetch(BATCH, timeout=FETCH_TIMEOUT_S)
            except TimeoutError:
                continue
            except NatsError as exc:
                log.warning("fetching job record changes failed (%r); retrying in %g s", exc, BROKER_PAUSE_S)
                await asyncio.sleep(BROKER_PAUSE_S)
                continue
            await self._apply(msgs)

    async def _apply(self, msgs: list[Msg]) -> None:
        """Apply one batch: each job's newest change, concurrently; then settle every message."""
        by_job: dict[str, list[Msg]] = {}
        for msg in msgs:
            by_job.setdefault(job_id_of(msg), []).append(msg)
        await asyncio.gather(*(self._apply_job(job_id, changes) for job_id, changes in by_job.items()))

    async def _apply_job(self, job_id: str, changes: list[Msg]) -> None:
        newest = max(changes, key=lambda m: m.metadata.sequence.stream)
        try:
            async with self._slots:
                await self._apply_change(job_id, newest)
        except (NatsError, TimeoutError, JetscribeError) as exc:
            log.warning("job %s: the job list was not updated (%r); retrying in %g s", job_id, exc, RETRY_DELAY_S)
            for msg in changes:
                with contextlib.suppress(NatsError):
                    await msg.nak(delay=RETRY_DELAY_S)
            return
        for msg in changes:
            with contextlib.suppress(NatsError):
                await msg.ack()

    async def _apply_change(self, job_id: str, msg: Msg) -> None:
        if is_removal(msg):
            await self._index.forget(job_id)
            return
        try:
            record = decode_record(msg.data)
        except SchemaError as exc:
            log.error("job %s: its record cannot be listed: %s", job_id, exc)
            return
        await self._index.reflect(record, msg.metadata.sequence.stream)


async def indexer_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: keeps the job list current for the app's lifetime (needs `keys.JOB_LIST`)."""
    async with JobListIndexer(app[keys.JS], app[keys.JOB_LIST]):
        yield
