"""Webhook isolation: a receiver that never answers holds only its own host's slots; others keep flowing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
import pytest
from aiohttp import web
from nats.js import JetStreamContext

from gateway.webhooks import WebhookDelivery
from gateway.webhooks.hosts import DEFER_MAX_S, DEFER_MIN_S, HostSlots, target_host
from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from tests.webhooks.conftest import ReceiverFactory, finished, finished_job, webhook_state

TARPIT_JOBS = 20


@dataclass
class Tarpit:
    """A receiver on 127.0.0.2 (another host than the others' 127.0.0.1) that reads each request and never
    answers; it counts the requests it holds until their client gives up."""

    url: str = ""
    requests: int = 0
    held: int = 0
    most_held: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests += 1
        self.held += 1
        self.most_held = max(self.most_held, self.held)
        self.arrived.set()
        try:
            await self.release.wait()  # or cancelled when the client gives up (`handler_cancellation`)
        finally:
            self.held -= 1
        return web.Response(status=503)

    async def wait_for(self, count: int) -> None:
        while self.requests < count:
            self.arrived.clear()
            await self.arrived.wait()


@pytest.fixture
async def tarpit() -> AsyncIterator[Tarpit]:
    pit = Tarpit()
    app = web.Application()
    app.router.add_post("/hook", pit.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.2", 0).start()
    pit.url = f"http://127.0.0.2:{runner.addresses[0][1]}/hook"
    yield pit
    pit.release.set()
    await runner.cleanup()


async def test_silent_receiver_with_many_jobs_does_not_delay_another_hosts_delivery(
    settings: Settings, receiver_factory: ReceiverFactory, tarpit: Tarpit, job_store: JobStore, js: JetStreamContext
) -> None:
    normal = await receiver_factory()
    bounded = msgspec.structs.replace(
        settings, webhook_concurrency=4, webhook_host_concurrency=2, webhook_timeout_s=30.0, shutdown_grace_s=0.1
    )
    async with WebhookDelivery(bounded, js, job_store):
        stuck = [await finished_job(job_store, js, tarpit.url) for _ in range(TARPIT_JOBS)]
        await tarpit.wait_for(bounded.webhook_host_concurrency)
        await finished_job(job_store, js, normal.url)

        await normal.wait_for(1)
        states = [(await job_store.require(record.id)).record.webhook for record in stuck]

    assert tarpit.requests == tarpit.most_held == bounded.webhook_host_concurrency
    assert all(state is not None and state.attempts == 0 for state in states), "a tarpit attempt ended first"
    assert len(normal.accepted) == 1


async def test_events_waiting_for_a_busy_host_keep_their_whole_retry_budget(
    settings: Settings, tarpit: Tarpit, job_store: JobStore, js: JetStreamContext
) -> None:
    bounded = msgspec.structs.replace(settings, webhook_host_concurrency=1, webhook_timeout_s=0.3)
    async with WebhookDelivery(bounded, js, job_store):
        records = [await finished_job(job_store, js, tarpit.url) for _ in range(3)]
        states = [await webhook_state(job_store, record.id, finished) for record in records]

    budget = len(bounded.webhook_retry_schedule_s) + 1
    assert [(state.attempts, state.exhausted) for state in states] == [(budget, True)] * 3
    assert all(state.last_error == "no answer within 0.3 s" for state in states)
    assert (tarpit.requests, tarpit.most_held) == (3 * budget, 1)


def test_one_host_holds_at_most_its_limit() -> None:
    slots = HostSlots(2)

    taken = [slots.try_take("a.example") for _ in range(3)]
    assert taken[2] is None and None not in taken[:2]
    assert slots.try_take("b.example") is not None
    slots.give_back("a.example", taken[0] or 0.0)
    assert slots.try_take("a.example") is not None
    assert slots.in_flight("a.example") == 2


def test_hosts_are_compared_by_name_without_port_or_case() -> None:
    assert target_host("https://Hooks.Example.com:8443/a") == target_host("http://hooks.example.com/b")
    assert target_host("not a url") is None


def test_deferrals_of_a_busy_host_are_spaced_by_its_attempt_time_over_its_limit() -> None:
    slots = HostSlots(4)
    for _ in range(4):
        started = slots.try_take("slow.example")
        assert started is not None
    slots.give_back("slow.example", started - 10.0)  # as if one attempt had taken 10 s
    slots.try_take("slow.example")

    delays = [slots.deferral_s("slow.example") for _ in range(3)]

    assert delays[0] == pytest.approx(DEFER_MIN_S, abs=0.05)
    assert delays[1] - delays[0] == pytest.approx(10.0 / 4, abs=0.05)
    assert delays[2] - delays[1] == pytest.approx(10.0 / 4, abs=0.05)


def test_no_deferral_is_longer_than_the_cap() -> None:
    slots = HostSlots(1)
    started = slots.try_take("silent.example")
    assert started is not None
    slots.give_back("silent.example", started - 1000.0)
    slots.try_take("silent.example")

    assert max(slots.deferral_s("silent.example") for _ in range(5)) <= DEFER_MAX_S
