"""Delivery of terminal events to webhook receivers: body, retries, stops and what the job records."""

from __future__ import annotations

import asyncio
import socket

import msgspec
import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from gateway.webhooks import WebhookDelivery, consumer_config
from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import encode, names
from schemas.codec import decode_job
from tests.webhooks.conftest import SEGMENTS, ReceiverFactory, finished, finished_job, publish_event, webhook_state


async def test_posts_the_finished_job_json_with_its_transcript(
    delivery: WebhookDelivery, receiver_factory: ReceiverFactory, job_store: JobStore, js: JetStreamContext
) -> None:
    receiver = await receiver_factory()
    record = await finished_job(job_store, js, receiver.url)

    [request] = await receiver.wait_for(1)

    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("jetscribe/")
    job = decode_job(request.body)
    assert (job.id, job.status, job.segments) == (record.id, "done", SEGMENTS)


async def test_failed_and_cancelled_jobs_are_delivered_too(
    delivery: WebhookDelivery, receiver_factory: ReceiverFactory, job_store: JobStore, js: JetStreamContext
) -> None:
    receiver = await receiver_factory()
    failed = await finished_job(job_store, js, receiver.url, kind="failed")
    cancelled = await finished_job(job_store, js, receiver.url, kind="cancelled")

    requests = await receiver.wait_for(2)

    jobs = {job.id: job for job in (decode_job(r.body) for r in requests)}
    assert jobs[failed.id].status == "failed"
    assert jobs[failed.id].error == "audio could not be decoded"
    assert jobs[cancelled.id].status == "cancelled"


async def test_receiver_failing_twice_gets_one_accepted_delivery_after_two_retries(
    delivery: WebhookDelivery, receiver_factory: ReceiverFactory, job_store: JobStore, js: JetStreamContext
) -> None:
    receiver = await receiver_factory(500, 503)
    record = await finished_job(job_store, js, receiver.url)

    state = await webhook_state(job_store, record.id, finished)

    assert [r.status for r in receiver.requests] == [500, 503, 200]
    assert len(receiver.accepted) == 1
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert (state.attempts, state.last_status, state.last_error, state.exhausted) == (3, 200, None, False)
    assert state.delivered_at is not None


async def test_gone_stops_retrying(
    delivery: WebhookDelivery,
    receiver_factory: ReceiverFactory,
    job_store: JobStore,
    js: JetStreamContext,
    settings: Settings,
) -> None:
    receiver = await receiver_factory(410)
    record = await finished_job(job_store, js, receiver.url)

    state = await webhook_state(job_store, record.id, finished)
    await asyncio.sleep(2 * sum(settings.webhook_retry_schedule_s))

    assert len(receiver.requests) == 1
    assert (state.attempts, state.last_status, state.exhausted, state.delivered_at) == (1, 410, True, None)
    assert "410 Gone" in (state.last_error or "")


async def test_exhausted_retries_are_recorded(
    delivery: WebhookDelivery,
    receiver_factory: ReceiverFactory,
    job_store: JobStore,
    js: JetStreamContext,
    settings: Settings,
) -> None:
    receiver = await receiver_factory(*[500] * 10)
    record = await finished_job(job_store, js, receiver.url)

    state = await webhook_state(job_store, record.id, finished)

    attempts = len(settings.webhook_retry_schedule_s) + 1
    assert len(receiver.requests) == attempts
    assert (state.attempts, state.last_status, state.exhausted, state.delivered_at) == (attempts, 500, True, None)
    assert state.last_error == "receiver answered HTTP 500"


async def test_a_given_up_webhook_is_logged_without_the_token_in_its_url(
    delivery: WebhookDelivery,
    receiver_factory: ReceiverFactory,
    job_store: JobStore,
    js: JetStreamContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = await receiver_factory(*[500] * 10)
    record = await finished_job(job_store, js, f"{receiver.url}?token=s3cr3t")

    await webhook_state(job_store, record.id, finished)

    given_up = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    assert given_up and "s3cr3t" not in given_up[0] and f"{receiver.url}?…" in given_up[0]


async def test_a_receiver_that_does_not_answer_in_time_is_retried(
    settings: Settings, receiver_factory: ReceiverFactory, job_store: JobStore, js: JetStreamContext
) -> None:
    receiver = await receiver_factory(hang_first=True)
    fast = msgspec.structs.replace(settings, webhook_timeout_s=0.5)
    async with WebhookDelivery(fast, js, job_store):
        record = await finished_job(job_store, js, receiver.url)
        state = await webhook_state(job_store, record.id, finished)

    assert (state.attempts, state.last_status) == (2, 200)
    assert [r.status for r in receiver.requests] == [0, 200]


async def test_connection_errors_are_retried_and_recorded(
    delivery: WebhookDelivery, job_store: JobStore, js: JetStreamContext, settings: Settings
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    record = await finished_job(job_store, js, f"http://127.0.0.1:{port}/hook")

    state = await webhook_state(job_store, record.id, finished)

    attempts = len(settings.webhook_retry_schedule_s) + 1
    assert (state.attempts, state.last_status, state.exhausted) == (attempts, None, True)
    assert (state.last_error or "").startswith("request failed: Cannot connect to host 127.0.0.1")


async def test_jobs_without_webhook_url_and_unknown_jobs_send_nothing(
    delivery: WebhookDelivery, receiver_factory: ReceiverFactory, job_store: JobStore, js: JetStreamContext
) -> None:
    receiver = await receiver_factory()
    silent = await finished_job(job_store, js, None)
    gone = await finished_job(job_store, js, receiver.url, publish=False)
    await job_store.delete(gone.id)
    await publish_event(js, gone, "completed")
    await js.publish(names.event_subject("completed", "garbage"), b"{not json")
    loud = await finished_job(job_store, js, receiver.url)

    await webhook_state(job_store, loud.id, finished)
    info = await consumer_drained(js)

    assert [decode_job(r.body).id for r in receiver.requests] == [loud.id]
    assert (await job_store.require(silent.id)).record.webhook is None
    assert info.num_ack_pending == 0


async def test_consumer_is_durable_with_explicit_ack_and_no_broker_delivery_limit(
    delivery: WebhookDelivery, js: JetStreamContext, settings: Settings
) -> None:
    info = await js.consumer_info(names.EVENTS_STREAM, names.WEBHOOKS_CONSUMER)

    wanted = consumer_config(settings)
    assert info.config.durable_name == names.WEBHOOKS_CONSUMER
    assert info.config.ack_policy == wanted.ack_policy
    assert info.config.max_deliver == -1
    assert info.config.ack_wait is not None and info.config.ack_wait > settings.webhook_timeout_s


async def logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    """Returns once a log record containing `text` has been captured."""
    while True:
        if any(text in record.message for record in caplog.records):
            return
        await asyncio.sleep(0.05)


async def consumer_drained(js: JetStreamContext) -> ConsumerInfo:
    """Consumer info once every event has been taken and settled."""
    while True:
        info = await js.consumer_info(names.EVENTS_STREAM, names.WEBHOOKS_CONSUMER)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return info
        await asyncio.sleep(0.05)


async def test_job_whose_transcript_is_gone_is_given_up_without_posting(
    delivery: WebhookDelivery, receiver_factory: ReceiverFactory, job_store: JobStore, js: JetStreamContext
) -> None:
    receiver = await receiver_factory()
    record = await finished_job(job_store, js, receiver.url, publish=False)
    assert record.transcript_object is not None
    await job_store.delete_transcript(record.transcript_object)
    await publish_event(js, record, "completed")

    state = await webhook_state(job_store, record.id, finished)

    assert receiver.requests == []
    assert (state.attempts, state.exhausted) == (0, True)
    assert state.last_error is not None and state.last_error.startswith(f"not sent: transcript '{record.id}.json'")


async def test_event_that_fails_unexpectedly_is_kept_and_delivered_once_the_fault_is_gone(
    delivery: WebhookDelivery,
    receiver_factory: ReceiverFactory,
    job_store: JobStore,
    js: JetStreamContext,
    topology: Topology,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = await receiver_factory()
    record = await finished_job(job_store, js, receiver.url, publish=False)
    await topology.jobs.put(record.id, b"a damaged record")
    await publish_event(js, record, "completed")
    await logged(caplog, "failed unexpectedly")

    await topology.jobs.put(record.id, encode(record))
    [request] = await receiver.wait_for(1)

    assert decode_job(request.body).id == record.id
    assert (await webhook_state(job_store, record.id, finished)).attempts == 1
