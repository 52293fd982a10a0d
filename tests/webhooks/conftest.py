"""Webhook test fixtures: real aiohttp receivers on loopback, finished jobs, running deliveries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiohttp import web
from multidict import CIMultiDictProxy
from nats.js import JetStreamContext

from gateway.webhooks import WebhookDelivery
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from schemas import JobRecord, Segment, TerminalEvent, WebhookState, Word, encode, names
from schemas.names import EventKind

POLL_S = 0.05
SEGMENTS = [
    Segment(index=0, start=0.0, end=1.5, text=" Hello there.", words=[Word(0.0, 0.7, " Hello", 0.9)]),
    Segment(index=1, start=1.5, end=3.0, text=" General Kenobi.", words=[]),
]


@dataclass
class Request:
    headers: CIMultiDictProxy[str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A loopback HTTP server answering POST / with `statuses` in turn, then 200.

    `hang` holds the first request open until the test ends (an unresponsive receiver).
    """

    statuses: list[int]
    hang_first: bool = False
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        index = len(self.requests)
        status = self.statuses[index] if index < len(self.statuses) else 200
        if self.hang_first and index == 0:
            self.requests.append(Request(request.headers, body, 0))
            self._changed.set()
            await self._release.wait()
            return web.Response(status=503)
        self.requests.append(Request(request.headers, body, status))
        self._changed.set()
        return web.Response(status=status, text="ok" if status < 300 else "nope")

    async def wait_for(self, count: int) -> list[Request]:
        while len(self.requests) < count:
            self._changed.clear()
            await self._changed.wait()
        return self.requests

    @property
    def accepted(self) -> list[Request]:
        return [r for r in self.requests if 200 <= r.status < 300]


ReceiverFactory = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receiver_factory() -> AsyncIterator[ReceiverFactory]:
    """`await receiver_factory(500, 200, hang_first=False)` starts a receiver on 127.0.0.1."""
    async with AsyncExitStack() as stack:

        async def start(*statuses: int, hang_first: bool = False) -> Receiver:
            receiver = Receiver(list(statuses), hang_first)
            app = web.Application()
            app.router.add_post("/hook", receiver.handle)
            runner = web.AppRunner(app, shutdown_timeout=0.5)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            stack.callback(receiver._release.set)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            receiver.url = f"http://127.0.0.1:{port}/hook"
            return receiver

        yield start


async def finished_job(
    job_store: JobStore,
    js: JetStreamContext,
    webhook_url: str | None,
    *,
    kind: EventKind = "completed",
    publish: bool = True,
) -> JobRecord:
    """Create a finished job's record (and transcript) and publish its terminal event, as a worker does."""
    job_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    status = {"completed": "done", "failed": "failed", "cancelled": "cancelled"}[kind]
    transcript = await job_store.put_transcript(job_id, SEGMENTS) if kind == "completed" else None
    record = JobRecord(
        id=job_id,
        status=status,
        task="transcribe",
        language="en",
        webhook_url=webhook_url,
        webhook=WebhookState(url=webhook_url) if webhook_url else None,
        duration_secs=3.0,
        progress=100,
        error="audio could not be decoded" if kind == "failed" else None,
        created_at=now,
        completed_at=now,
        transcript_object=transcript,
    )
    assert await job_store.create(record) is not None
    if publish:
        await publish_event(js, record, kind)
    return record


async def publish_event(js: JetStreamContext, record: JobRecord, kind: EventKind) -> None:
    event = TerminalEvent(
        type=kind, job=record.to_job(), transcript_object=record.transcript_object, occurred_at=datetime.now(UTC)
    )
    headers = {names.MSG_ID_HEADER: f"{record.id}:{kind}"}
    await js.publish(names.event_subject(kind, record.id), encode(event), headers=headers)


async def webhook_state(
    job_store: JobStore, job_id: str, done: Callable[[WebhookState], bool] = lambda s: True
) -> WebhookState:
    """The job's webhook state once `done` holds for it (polls KV; the test timeout bounds the wait)."""
    while True:
        found = await job_store.get(job_id)
        state = found.record.webhook if found else None
        if state is not None and done(state):
            return state
        await asyncio.sleep(POLL_S)


def finished(state: WebhookState) -> bool:
    return state.delivered_at is not None or state.exhausted


@pytest.fixture
async def delivery(settings: Settings, js: JetStreamContext, job_store: JobStore) -> AsyncIterator[WebhookDelivery]:
    """A running WebhookDelivery with the test settings (private targets allowed, short schedule)."""
    async with WebhookDelivery(settings, js, job_store) as running:
        yield running


GatewayFactory = Callable[..., Awaitable[tuple[WebhookDelivery, AsyncExitStack]]]


@pytest.fixture
async def gateway_factory(settings: Settings, job_store: JobStore) -> AsyncIterator[GatewayFactory]:
    """`await gateway_factory(settings=None)` runs a delivery with its own NATS connection, like a gateway
    process; close the returned stack to stop that gateway."""
    async with AsyncExitStack() as stack:

        async def start(custom: Settings | None = None) -> tuple[WebhookDelivery, AsyncExitStack]:
            own = AsyncExitStack()
            assert settings.nats_url is not None
            nc = await connect(settings, settings.nats_url, name="gateway")
            own.push_async_callback(nc.close)
            delivery = await own.enter_async_context(WebhookDelivery(custom or settings, nc.jetstream(), job_store))
            stack.push_async_callback(own.aclose)
            return delivery, own

        yield start
