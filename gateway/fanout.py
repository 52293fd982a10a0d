"""Fan-out of job events to the event streams (SSE clients) of one gateway.

However many clients follow a job, the gateway holds one core subscription on that job's progress
subject, opened for the first follower and closed with the last (a reference count). Terminal
events, one per job, reach every follower through a single wildcard subscription on the events
subjects held for the gateway's lifetime. A slow client loses old progress events (its queue keeps
the newest `QUEUE_LIMIT`), never the stream: the state in KV stays the authority.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from schemas import SchemaError, TerminalEvent, names
from schemas.codec import decode_live_event, decode_terminal_event
from schemas.events import LiveEvent

log = logging.getLogger(__name__)

QUEUE_LIMIT: Final = 256


class HubClosing:
    """Put in every follower's queue when the gateway shuts down: end the stream now."""


JobItem = LiveEvent | TerminalEvent | HubClosing


@dataclass(eq=False)
class _Feed:
    followers: set[asyncio.Queue[JobItem]] = field(default_factory=set)
    subscription: Subscription | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class JobEventHub:
    """Shares one NATS subscription per job among all of its followers on this gateway."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._feeds: dict[str, _Feed] = {}
        self._terminal: Subscription | None = None

    async def __aenter__(self) -> Self:
        if self._terminal is not None:
            raise RuntimeError("this JobEventHub is already started")
        self._terminal = await self._nc.subscribe(names.EVENTS_STREAM_SUBJECTS[0], cb=self._on_terminal)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        subscriptions = [f.subscription for f in self._feeds.values() if f.subscription is not None]
        if self._terminal is not None:
            subscriptions.append(self._terminal)
        self._feeds.clear()
        self._terminal = None
        for subscription in subscriptions:
            if not self._nc.is_closed:
                await subscription.unsubscribe()

    def close_streams(self) -> None:
        """Tell every follower to end its stream (at shutdown, before in-flight requests are awaited)."""
        for feed in self._feeds.values():
            for queue in feed.followers:
                _offer(queue, HubClosing())

    @property
    def subscribed_jobs(self) -> int:
        """How many jobs this gateway holds a progress subscription for."""
        return sum(1 for f in self._feeds.values() if f.subscription is not None)

    def followers(self, job_id: str) -> int:
        feed = self._feeds.get(job_id)
        return len(feed.followers) if feed else 0

    @asynccontextmanager
    async def follow(self, job_id: str) -> AsyncIterator[asyncio.Queue[JobItem]]:
        """A queue of the job's events from now on, for as long as the context is open."""
        queue: asyncio.Queue[JobItem] = asyncio.Queue(QUEUE_LIMIT)
        feed = self._feeds.get(job_id)
        if feed is None:
            feed = self._feeds[job_id] = _Feed()

            async def on_progress(msg: Msg) -> None:
                self._on_progress(job_id, msg)

            try:
                feed.subscription = await self._nc.subscribe(names.progress_subject(job_id), cb=on_progress)
            except BaseException:
                del self._feeds[job_id]
                raise
            finally:
                feed.ready.set()
        await feed.ready.wait()
        if feed.subscription is None:
            raise RuntimeError(f"could not subscribe to the events of job {job_id}")
        feed.followers.add(queue)
        try:
            yield queue
        finally:
            feed.followers.discard(queue)
            if not feed.followers and self._feeds.get(job_id) is feed:
                del self._feeds[job_id]
                if not self._nc.is_closed:
                    await feed.subscription.unsubscribe()

    def _on_progress(self, job_id: str, msg: Msg) -> None:
        try:
            event = decode_live_event(msg.data)
        except SchemaError as exc:
            log.warning("job %s: ignoring a malformed progress event: %s", job_id, exc)
            return
        self._deliver(job_id, event)

    async def _on_terminal(self, msg: Msg) -> None:
        job_id = msg.subject.rsplit(".", 1)[-1]
        if job_id not in self._feeds:
            return
        try:
            event = decode_terminal_event(msg.data)
        except SchemaError as exc:
            log.warning("job %s: ignoring a malformed terminal event: %s", job_id, exc)
            return
        self._deliver(job_id, event)

    def _deliver(self, job_id: str, item: JobItem) -> None:
        feed = self._feeds.get(job_id)
        if feed is None:
            return
        for queue in feed.followers:
            _offer(queue, item)


def _offer(queue: asyncio.Queue[JobItem], item: JobItem) -> None:
    """Enqueue without blocking; a full queue drops its oldest item."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
