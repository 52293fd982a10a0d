"""Workers as separate processes: a killed worker's job is finished by another exactly once, SIGTERM
hands a running job back, and the command refuses to start without a NATS server."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import msgspec
import pytest
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from tests.worker.conftest import StartWorker
from tests.worker.jobs import AUDIO, submit, terminal_event, terminal_event_count
from tests.worker.process import WorkerProcess, jetscribe_command, worker_env
from tests.worker.test_lifecycle import transcribing


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A short ack wait, so a killed worker's job is redelivered within seconds."""
    return msgspec.structs.replace(settings, ack_wait_s=3.0, in_progress_interval_s=1.0, shutdown_grace_s=0.0)


@pytest.mark.slow
async def test_killed_workers_job_is_finished_by_another_exactly_once(
    settings: Settings,
    start_worker: StartWorker,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    tmp_path: Path,
) -> None:
    async with WorkerProcess(worker_env(settings), topology, tmp_path / "first.log") as first:
        job_id = await submit(js, topology, AUDIO / "long60.ogg")
        await asyncio.wait_for(transcribing(job_store, job_id), 60)
        first.kill()
        assert await first.exit_code() < 0
    taken = (await job_store.require(job_id)).record

    async with start_worker() as second:
        event = await terminal_event(js, job_id)

    assert taken.status == "running" and taken.worker_id == first.worker_id
    assert event.type == "completed"
    record = (await job_store.require(job_id)).record
    assert record.status == "done" and record.worker_id == second.worker_id and record.attempts == 2
    assert await terminal_event_count(js, job_id) == 1
    assert second.jobs_done == 1


@pytest.mark.slow
async def test_sigterm_hands_the_running_job_to_another_worker(
    settings: Settings,
    start_worker: StartWorker,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    tmp_path: Path,
) -> None:
    patient = msgspec.structs.replace(settings, ack_wait_s=60.0)
    async with WorkerProcess(worker_env(patient), topology, tmp_path / "first.log") as first:
        job_id = await submit(js, topology, AUDIO / "long60.ogg")
        await asyncio.wait_for(transcribing(job_store, job_id), 60)
        first.terminate()
        assert await first.exit_code() == 0, first.log()
    assert "handing back job" in first.log()
    handed_back = (await job_store.require(job_id)).record

    async with start_worker(ack_wait_s=60.0) as second:
        # Redelivery by ack timeout would take 60 s; the hand-back (nak) makes it immediate.
        await asyncio.wait_for(taken_by(job_store, job_id, second.worker_id), 30)
        event = await terminal_event(js, job_id)

    assert handed_back.status == "queued"
    assert event.type == "completed"
    record = (await job_store.require(job_id)).record
    assert record.worker_id == second.worker_id and record.attempts == 2
    assert await terminal_event_count(js, job_id) == 1
    with pytest.raises(KeyNotFoundError):
        await topology.workers.get(first.worker_id or "")


@pytest.mark.slow
async def test_three_sigterms_during_one_job_cost_it_none_of_its_deliveries(
    settings: Settings,
    start_worker: StartWorker,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    tmp_path: Path,
) -> None:
    patient = msgspec.structs.replace(settings, ack_wait_s=60.0, max_deliver=3)
    job_id = await submit(js, topology, AUDIO / "long60.ogg")
    for restart in range(3):
        async with WorkerProcess(worker_env(patient), topology, tmp_path / f"worker{restart}.log") as rolling:
            await asyncio.wait_for(taken_by(job_store, job_id, rolling.worker_id or ""), 60)
            await asyncio.wait_for(transcribing(job_store, job_id), 60)
            rolling.terminate()
            assert await rolling.exit_code() == 0, rolling.log()
        assert (await job_store.require(job_id)).record.status == "queued"

    async with start_worker(max_deliver=3) as last:
        event = await terminal_event(js, job_id)

    assert event.type == "completed", event.job.error
    record = (await job_store.require(job_id)).record
    assert record.status == "done" and record.worker_id == last.worker_id and record.attempts == 4
    assert await terminal_event_count(js, job_id) == 1


async def taken_by(job_store: JobStore, job_id: str, worker_id: str) -> None:
    """Return once `worker_id` has claimed the job."""
    while True:
        found = await job_store.get(job_id)
        if found is not None and found.record.worker_id == worker_id:
            return
        await asyncio.sleep(0.05)


async def test_worker_command_without_a_nats_url_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JETSCRIBE_")}
    env["DATA_DIR"] = str(tmp_path)

    done = await asyncio.to_thread(
        subprocess.run, [*jetscribe_command(), "worker"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1
    assert "set JETSCRIBE_NATS_URL" in done.stderr
