"""A slot prepares its next job (fetch + decode) while the current one transcribes, so the engine never
waits for the pipeline."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec
import pytest
from nats.js import JetStreamContext

from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import JobRecord
from tests.worker.conftest import StartWorker
from tests.worker.jobs import AUDIO, submit, terminal_event
from tests.worker.test_lifecycle import transcribing

pytestmark = pytest.mark.slow


async def claimed(job_store: JobStore, job_id: str) -> JobRecord:
    """The job's record once a worker has claimed it."""
    while True:
        found = await job_store.get(job_id)
        if found is not None and found.record.status == "running":
            return found.record
        await asyncio.sleep(0.05)


async def test_the_next_job_is_claimed_and_decoded_while_the_current_one_transcribes(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker(prefetch_lead_s=3600.0) as only:
        first = await submit(js, topology, AUDIO / "long60.ogg")
        await asyncio.wait_for(transcribing(job_store, first), 60)
        second = await submit(js, topology, AUDIO / "en1.wav")
        waiting = await asyncio.wait_for(claimed(job_store, second), 30)
        first_meanwhile = (await job_store.require(first)).record
        both_held = sorted(only.current_jobs)

        events = [await terminal_event(js, first), await terminal_event(js, second)]

    assert first_meanwhile.status == "running"
    assert waiting.progress < 10, "the second job must wait for the engine, not share it"
    assert both_held == sorted([first, second])
    assert [e.type for e in events] == ["completed", "completed"]
    assert only.jobs_done == 2


@pytest.mark.timeout(300)
async def test_prefetched_audio_waits_for_the_budget_the_running_job_holds(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker(prefetch_lead_s=3600.0, max_audio_s=100.0):
        first = await submit(js, topology, AUDIO / "long60.ogg")
        await asyncio.wait_for(transcribing(job_store, first), 60)
        second = await submit(js, topology, AUDIO / "long60.ogg")
        events = [await terminal_event(js, first, within_s=180), await terminal_event(js, second, within_s=180)]
    first_record = (await job_store.require(first)).record
    second_record = (await job_store.require(second)).record

    assert [e.type for e in events] == ["completed", "completed"]
    assert first_record.timings is not None and second_record.timings is not None
    assert first_record.started_at is not None and second_record.started_at is not None
    first_freed = first_record.started_at + timedelta(seconds=sum(msgspec.structs.astuple(first_record.timings)))
    second_decoded = second_record.started_at + timedelta(
        seconds=second_record.timings.fetch_s + second_record.timings.decode_s
    )
    # 62 s + 62 s of decoded audio exceed the 100 s budget: the second decode finishes only once the first
    # job gave its samples back.
    assert second_decoded >= first_freed - timedelta(seconds=1)
