"""A job published during an outage is retried with the same Nats-Msg-Id: the stream stores it once, it runs once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from gateway.publish import publish_durably
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import DecodeOptions, JobMessage, encode, names
from tests.worker.jobs import AUDIO, new_job_id, terminal_event, terminal_event_count, upload
from worker.service import Worker

pytestmark = pytest.mark.slow


async def retried(caplog: pytest.LogCaptureFixture, job_id: str) -> None:
    while True:
        if any("retrying" in r.getMessage() and job_id in r.getMessage() for r in caplog.records):
            return
        await asyncio.sleep(0.1)


async def test_publish_retried_through_an_outage_is_stored_and_run_once(
    settings: Settings,
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    nc: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.publish")
    job_id = new_job_id()
    message = JobMessage(
        job_id=job_id,
        audio_object=await upload(topology, AUDIO / "en1.wav"),
        options=DecodeOptions(beam_size=1),
        submitted_at=datetime.now(UTC),
    )
    before = (await js.stream_info(names.JOBS_STREAM)).state.last_seq

    await asyncio.to_thread(nats_server.kill)
    publishing = asyncio.create_task(
        publish_durably(js, names.JOBS_SUBJECT, encode(message), msg_id=job_id), name="publish"
    )
    await asyncio.wait_for(retried(caplog, job_id), 30)
    restarted = EmbeddedNats(nats_server.store_dir, port=nats_server.port)
    await asyncio.to_thread(restarted.start)
    try:
        await asyncio.wait_for(publishing, 60)
        state = (await js.stream_info(names.JOBS_STREAM)).state
        async with Worker(settings, nc):
            event = await terminal_event(js, job_id)
        events = await terminal_event_count(js, job_id)
        record = (await job_store.require(job_id)).record
    finally:
        await asyncio.to_thread(restarted.stop)

    assert state.last_seq == before + 1 and state.messages == 1
    assert event.type == "completed" and events == 1
    assert record.status == "done" and record.attempts == 1
