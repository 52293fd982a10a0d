"""Delivery across gateway restarts and with several gateways sharing the consumer."""

from __future__ import annotations

import asyncio
from collections import Counter

import msgspec
from nats.js import JetStreamContext

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from tests.webhooks.conftest import GatewayFactory, ReceiverFactory, finished, finished_job, webhook_state


async def test_gateway_stopped_during_backoff_delivers_after_a_new_one_starts(
    gateway_factory: GatewayFactory,
    receiver_factory: ReceiverFactory,
    job_store: JobStore,
    js: JetStreamContext,
    settings: Settings,
) -> None:
    receiver = await receiver_factory(500)
    _, first = await gateway_factory()
    record = await finished_job(job_store, js, receiver.url)
    await webhook_state(job_store, record.id, lambda s: s.attempts == 1)
    await first.aclose()

    await asyncio.sleep(4 * settings.webhook_retry_schedule_s[0])
    assert len(receiver.requests) == 1
    await gateway_factory()
    state = await webhook_state(job_store, record.id, finished)

    assert [r.status for r in receiver.requests] == [500, 200]
    assert (state.attempts, state.last_status) == (2, 200)


async def test_two_gateways_deliver_each_event_once(
    gateway_factory: GatewayFactory, receiver_factory: ReceiverFactory, job_store: JobStore, js: JetStreamContext
) -> None:
    receiver = await receiver_factory(*[500, 200] * 10)
    await gateway_factory()
    await gateway_factory()
    records = [await finished_job(job_store, js, receiver.url) for _ in range(20)]

    states = [await webhook_state(job_store, r.id, finished) for r in records]

    accepted = Counter(r.headers["webhook-id"] for r in receiver.accepted)
    assert sorted(accepted) == sorted(f"{r.id}:completed" for r in records)
    assert set(accepted.values()) == {1}
    assert all(s.delivered_at is not None for s in states)


async def test_shutdown_mid_attempt_hands_the_event_to_another_gateway_at_once(
    gateway_factory: GatewayFactory,
    receiver_factory: ReceiverFactory,
    job_store: JobStore,
    js: JetStreamContext,
    settings: Settings,
) -> None:
    receiver = await receiver_factory(hang_first=True)
    impatient = msgspec.structs.replace(settings, shutdown_grace_s=0.0, webhook_timeout_s=60.0)
    _, first = await gateway_factory(impatient)
    record = await finished_job(job_store, js, receiver.url)
    await receiver.wait_for(1)
    await first.aclose()

    await gateway_factory(impatient)
    async with asyncio.timeout(30):
        state = await webhook_state(job_store, record.id, finished)

    assert [r.status for r in receiver.requests] == [0, 200]
    assert (state.attempts, state.last_status) == (1, 200)
