"""A job's life in the worker: state by compare-and-set, progress, cancel, hand-back, heartbeat."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import CancelRequest, JobMessage, JobRecord, ProgressEvent, SegmentEvent, encode, names
from schemas.codec import decode_heartbeat, decode_live_event
from tests.worker.conftest import StartWorker
from tests.worker.jobs import AUDIO, new_job_id, publish_job, submit, terminal_event, terminal_event_count, upload
from worker.service import Worker


async def transcribing(job_store: JobStore, job_id: str) -> None:
    """Return once the job's record says whisper is running on it."""
    while True:
        found = await job_store.get(job_id)
        if found is not None and found.record.status == "running" and found.record.progress >= 10:
            return
        await asyncio.sleep(0.05)


async def reconnected(nc: Client) -> None:
    """Return once the client has reconnected and the server answers."""
    while True:
        try:
            await nc.flush(timeout=1)
            return
        except (NatsError, TimeoutError):
            await asyncio.sleep(0.1)


async def queued_record(job_store: JobStore, js: JetStreamContext, topology: Topology, **fields: object) -> str:
    """A job the gateway recorded (with `fields` changed) and published, audio and all."""
    job_id = new_job_id()
    audio_object = await upload(topology, AUDIO / "en1.wav")
    now = datetime.now(UTC)
    record = JobRecord(id=job_id, status="queued", task="transcribe", language=None, created_at=now)
    await job_store.create(msgspec.structs.replace(record, audio_object=audio_object, **fields))
    await publish_job(js, JobMessage(job_id=job_id, audio_object=audio_object))
    return job_id


async def test_job_cancelled_while_queued_is_skipped(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await queued_record(
        job_store, js, topology, status="cancelled", completed_at=datetime.now(UTC), error="cancelled by request"
    )
    after = await submit(js, topology, AUDIO / "en2.wav")

    event = await terminal_event(js, job_id)
    assert (await terminal_event(js, after)).type == "completed"

    assert event.type == "cancelled"
    record = (await job_store.require(job_id)).record
    assert record.status == "cancelled"
    assert record.started_at is None and record.worker_id is None and record.attempts == 0
    assert (await js.stream_info(names.JOBS_STREAM)).state.messages == 0


async def test_job_with_cancel_requested_while_queued_is_skipped(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await queued_record(job_store, js, topology, cancel_requested=True)

    event = await terminal_event(js, job_id)

    assert event.type == "cancelled"
    record = (await job_store.require(job_id)).record
    assert record.status == "cancelled" and record.started_at is None


async def test_redelivery_of_a_finished_job_changes_nothing(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await queued_record(
        job_store, js, topology, status="done", completed_at=datetime.now(UTC), transcript_object="earlier.json"
    )
    before = await job_store.require(job_id)
    after = await submit(js, topology, AUDIO / "en2.wav")

    assert (await terminal_event(js, after)).type == "completed"

    now = await job_store.require(job_id)
    assert now.revision == before.revision
    assert now.record.transcript_object == "earlier.json"
    assert (await js.stream_info(names.JOBS_STREAM)).state.messages == 0


@pytest.mark.slow
async def test_running_job_is_cancelled_within_two_seconds(
    worker: Worker, nc: Client, js: JetStreamContext, topology: Topology, job_store: JobStore, long_audio: Path
) -> None:
    job_id = await submit(js, topology, long_audio)
    await asyncio.wait_for(transcribing(job_store, job_id), 60)
    await asyncio.sleep(0.5)

    started = time.monotonic()
    await nc.publish(names.cancel_subject(job_id), encode(CancelRequest(job_id=job_id, requested_at=datetime.now(UTC))))
    event = await terminal_event(js, job_id, within_s=10)
    elapsed = time.monotonic() - started

    assert event.type == "cancelled"
    assert elapsed <= 2.0
    record = (await job_store.require(job_id)).record
    assert record.status == "cancelled" and record.transcript_object is None
    assert (await js.stream_info(names.JOBS_STREAM)).state.messages == 0
    next_job = await submit(js, topology, AUDIO / "en5.wav")
    assert (await terminal_event(js, next_job)).type == "completed"


@pytest.mark.slow
async def test_cancel_recorded_in_kv_is_honoured(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore,
    long_audio: Path,
) -> None:  # fmt: skip
    async with start_worker(in_progress_interval_s=0.5):
        job_id = await submit(js, topology, long_audio)
        await asyncio.wait_for(transcribing(job_store, job_id), 60)

        await job_store.transition(job_id, lambda r: msgspec.structs.replace(r, cancel_requested=True))
        event = await terminal_event(js, job_id, within_s=10)

    assert event.type == "cancelled"


@pytest.mark.slow
async def test_progress_reaches_the_progress_subject_and_kv(
    worker: Worker, nc: Client, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = new_job_id()
    events: list[ProgressEvent | SegmentEvent] = []

    async def collect(msg: Msg) -> None:
        events.append(decode_live_event(msg.data))

    sub = await nc.subscribe(names.progress_subject(job_id), cb=collect)
    kv_progress: set[int] = set()

    async def poll_kv() -> None:
        while True:
            found = await job_store.get(job_id)
            if found is not None:
                kv_progress.add(found.record.progress)
            await asyncio.sleep(0.05)

    polling = asyncio.create_task(poll_kv())
    audio_object = await upload(topology, AUDIO / "long60.ogg")
    await publish_job(js, JobMessage(job_id=job_id, audio_object=audio_object))
    event = await terminal_event(js, job_id)
    polling.cancel()
    await sub.unsubscribe()

    assert event.type == "completed"
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    percents = [e.percent for e in progress]
    assert percents == sorted(percents)
    assert {"fetching", "decoding", "transcribing", "finishing"} <= {e.stage for e in progress}
    assert any(10 < p < 99 for p in percents)
    assert any(isinstance(e, SegmentEvent) and e.segment.text for e in events)
    assert any(0 < p < 100 for p in kv_progress)


@pytest.mark.slow
async def test_stop_hands_a_running_job_back_to_the_next_worker(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker(shutdown_grace_s=0) as first:
        job_id = await submit(js, topology, AUDIO / "long60.ogg")
        await asyncio.wait_for(transcribing(job_store, job_id), 60)
    handed_back = (await job_store.require(job_id)).record

    async with start_worker() as second:
        event = await terminal_event(js, job_id)

    assert handed_back.status == "queued" and handed_back.worker_id == first.worker_id
    assert event.type == "completed"
    record = (await job_store.require(job_id)).record
    assert record.worker_id == second.worker_id and record.attempts == 2
    assert first.jobs_done == 0 and second.jobs_done == 1


async def test_stop_lets_a_running_job_finish_within_the_grace_period(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker(shutdown_grace_s=60) as only:
        job_id = await submit(js, topology, AUDIO / "en6.wav")
        await asyncio.wait_for(transcribing(job_store, job_id), 60)

    assert (await job_store.require(job_id)).record.status == "done"
    assert only.jobs_done == 1


@pytest.mark.slow
async def test_each_slot_runs_a_job_at_the_same_time(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker(worker_slots=2, threads=1) as both:
        first = await submit(js, topology, AUDIO / "long60.ogg")
        second = await submit(js, topology, AUDIO / "long60.ogg")
        await asyncio.wait_for(asyncio.gather(transcribing(job_store, first), transcribing(job_store, second)), 60)
        running_together = sorted(both.current_jobs)

        events = [await terminal_event(js, first), await terminal_event(js, second)]

    assert running_together == sorted([first, second])
    assert [e.type for e in events] == ["completed", "completed"]
    assert both.jobs_done == 2


async def test_heartbeat_describes_the_worker_until_it_stops(start_worker: StartWorker, topology: Topology) -> None:
    async with start_worker() as running:
        entry = await topology.workers.get(running.worker_id)
        heartbeat = decode_heartbeat(entry.value or b"")

    assert heartbeat.worker_id == running.worker_id
    assert heartbeat.model == "tiny.en"
    assert heartbeat.device.kind == "cpu" and heartbeat.device.name
    assert heartbeat.slots == 1 and heartbeat.current_jobs == [] and heartbeat.jobs_done == 0
    assert heartbeat.pid > 0 and heartbeat.host
    with pytest.raises(KeyNotFoundError):
        await topology.workers.get(running.worker_id)


@pytest.mark.slow
async def test_job_survives_a_nats_server_restart_mid_transcription(
    worker: Worker,
    nats_server: EmbeddedNats,
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
) -> None:
    job_id = await submit(js, topology, AUDIO / "long60.ogg")
    await asyncio.wait_for(transcribing(job_store, job_id), 60)

    await asyncio.to_thread(nats_server.stop)
    await asyncio.to_thread(nats_server.start)
    await asyncio.wait_for(reconnected(nc), 30)
    event = await terminal_event(js, job_id)

    assert event.type == "completed"
    assert await terminal_event_count(js, job_id) == 1
    assert (await job_store.require(job_id)).record.status == "done"
