"""Fair sharing of one model's slots between tenants: which tenant's job a free slot takes next.

Each tenant's jobs for a model wait on their own subject, `jetscribe.jobs.<model token>.<tenant>`, behind their
own durable consumer, `workers-<model token>~<tenant>` (jetscribe/jobqueue.py), shared by every worker of the
model. A slot that is free (or about to be) asks for one job (`FairQueue.take`):

1. The stream's per-subject counts (`stream_info` with the subject filter `jetscribe.jobs.<model token>.*`)
   say which tenants have jobs on the model's subjects; each tenant's consumer says how many of them are
   delivered and not yet acknowledged, pool-wide: its running jobs (`num_ack_pending`). A tenant with jobs and
   no consumer yet gets one here.
2. The tenants are tried in `serving_order`: fewest running jobs first, ties in a rotation that starts after
   the tenant this worker last served. Each try is one pull request with `no_wait` (ADR-13), answered at once
   with the tenant's next deliverable job (a waiting one, or a redelivery that has fallen due) or with 404.
3. The first job found is the slot's. If none is, the slot waits until a job is published on the model's
   subjects (a core subscription sees every publish) or `IDLE_WAIT_S` passes, and asks again.

So a tenant with nothing running takes the next free slot of the model unless another tenant with nothing
running comes before it in the rotation, however many jobs any tenant has queued. The slots of one worker take
turns (a lock), so its rotation is one sequence; between workers the counts they read may race, which can only
give a tenant with nothing running more than one slot at once, never fewer.

Everything that happens to a message after it is taken (in_progress, ack, nak, term, hand-back, `max_deliver`
and the dead letters) is as before: the message is an ordinary delivery of its tenant's consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import NotFoundError

from jetscribe.config import Settings
from jetscribe.jobqueue import ensure_tenant_consumer
from schemas import names

log = logging.getLogger(__name__)

IDLE_WAIT_S: Final = 1.0
"""How long a slot that found nothing waits for a new job before it looks again: also how soon it sees a
redelivery fall due (no publish announces one)."""
RETRY_S: Final = 1.0
NEXT_TIMEOUT_S: Final = 5.0
"""A `no_wait` pull is answered at once; this only bounds a request lost in a reconnect."""
_NO_WAIT_PULL: Final = msgspec.json.encode({"batch": 1, "no_wait": True})


@dataclass(frozen=True, slots=True)
class TenantQueue:
    """One tenant's jobs for one model, as the stream and the tenant's consumer count them."""

    tenant: str
    jobs: int
    """Messages on the tenant's subject: waiting, plus delivered and not yet acknowledged."""
    running: int
    """Delivered to a worker (any worker) and not yet acknowledged: `num_ack_pending` of its consumer."""


def serving_order(queues: Iterable[TenantQueue], last: str | None) -> list[str]:
    """The tenants in the order a free slot tries them: fewest running jobs first; among equals, a rotation in
    name order that starts after `last` (the tenant this worker served last; None: from the first name)."""

    def key(queue: TenantQueue) -> tuple[int, bool, str]:
        return queue.running, last is not None and queue.tenant <= last, queue.tenant

    return [queue.tenant for queue in sorted(queues, key=key)]


class FairQueue:
    """One model's jobs as this worker's slots of that model take them; an async context manager (it owns the
    subscription that wakes idle slots)."""

    def __init__(self, nc: Client, settings: Settings, model: str) -> None:
        self.model = model
        self._nc = nc
        self._js = nc.jetstream()
        self._settings = settings
        self._turn = asyncio.Lock()
        self._published = asyncio.Event()
        self._last: str | None = None
        self._wake: Subscription | None = None
        self._replies: Subscription | None = None

    async def __aenter__(self) -> Self:
        if self._wake is not None:
            raise RuntimeError(f"the FairQueue of model {self.model} is already open")
        self._wake = await self._nc.subscribe(names.model_jobs_filter(self.model), cb=self._on_publish)
        # Pull replies come on the job's own subject, not the reply inbox's, so they need an inbox of their own
        # (a muxed request would drop them); one suffices, as the slots take turns.
        self._replies = await self._nc.subscribe(self._nc.new_inbox())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sub in (self._wake, self._replies):
            if sub is not None:
                with contextlib.suppress(NatsError):
                    await sub.unsubscribe()
        self._wake = self._replies = None

    async def _on_publish(self, msg: Msg) -> None:
        self._published.set()

    async def take(self, stopping: asyncio.Event) -> Msg | None:
        """The job a free slot runs next, or None once `stopping` is set or nothing came within `IDLE_WAIT_S`
        (never raises for what NATS does: a fault is logged and answered with None after `RETRY_S`)."""
        async with self._turn:
            if stopping.is_set():
                return None
            # Cleared before the counts are read: a job published from here on wakes the wait below.
            self._published.clear()
            try:
                msg = await self._take(stopping)
            except (NatsError, TimeoutError) as exc:
                log.warning("taking a job of model %s failed: %r", self.model, exc)
                await _wait(self._published, stopping, RETRY_S)
                return None
            if msg is None:
                await _wait(self._published, stopping, IDLE_WAIT_S)
            return msg

    async def _take(self, stopping: asyncio.Event) -> Msg | None:
        for tenant in serving_order(await self.queues(), self._last):
            if stopping.is_set():
                return None
            msg = await self._next(tenant)
            if msg is not None:
                self._last = tenant
                return msg
        return None

    async def queues(self) -> list[TenantQueue]:
        """Every tenant with jobs on the model's subjects, with its running jobs; creates missing consumers."""
        info = await self._js.stream_info(names.JOBS_STREAM, subjects_filter=names.model_jobs_filter(self.model))
        jobs: dict[str, int] = {}
        for subject, count in (info.state.subjects or {}).items():
            place = names.place_of_jobs_subject(subject)
            if place is not None and place[0] == self.model and count:
                jobs[place[1]] = count
        running = await asyncio.gather(*(self._running(tenant) for tenant in jobs))
        return [
            TenantQueue(tenant=tenant, jobs=count, running=held)
            for (tenant, count), held in zip(jobs.items(), running, strict=True)
        ]

    async def _running(self, tenant: str) -> int:
        """The tenant's jobs delivered and not yet acknowledged, read from its consumer (made if missing)."""
        try:
            info: api.ConsumerInfo = await self._js.consumer_info(
                names.JOBS_STREAM, names.tenant_consumer(self.model, tenant)
            )
        except NotFoundError:
            await ensure_tenant_consumer(self._js, self._settings, self.model, tenant)
            log.info("model %s: jobs of tenant %s now have their consumer", self.model, tenant)
            return 0
        return info.num_ack_pending or 0

    async def _next(self, tenant: str) -> Msg | None:
        """The tenant's next deliverable job, if it has one now (one `no_wait` pull request)."""
        replies = self._replies
        if replies is None:
            raise RuntimeError(f"the FairQueue of model {self.model} is not open: use it as `async with`")
        # A reply that came after its request timed out: a job delivered to this worker is still its to run.
        while replies.pending_msgs:
            late = await replies.next_msg()
            if not _status(late):
                return late
        subject = names.consumer_next_subject(names.JOBS_STREAM, names.tenant_consumer(self.model, tenant))
        await self._nc.publish(subject, _NO_WAIT_PULL, reply=replies.subject)
        try:
            reply = await replies.next_msg(timeout=NEXT_TIMEOUT_S)
        except TimeoutError:
            return None
        status = _status(reply)
        if status is None:
            return reply
        # 404: nothing deliverable now; 408/409: expired, or the consumer holds its most jobs; 503: the consumer
        # was deleted since it was read (idle past its threshold), and is made again next time.
        if status not in ("404", "408", "409", "503"):
            log.warning("pulling a job of tenant %s (model %s) was answered with status %s", tenant, self.model, status)
        return None


def _status(msg: Msg) -> str | None:
    """The status of a JetStream status message (e.g. "404"); None for a job message."""
    return msg.headers.get(api.Header.STATUS) if msg.headers else None


async def _wait(event: asyncio.Event, stopping: asyncio.Event, timeout_s: float) -> None:
    """Until `event` or `stopping` is set, or `timeout_s` has passed."""
    waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
