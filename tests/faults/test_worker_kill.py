"""Workers SIGKILLed mid-job while others keep working: every queued job ends done, exactly once."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Final

import pytest
from nats.js import JetStreamContext

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from tests.faults.conftest import wait_until_running, wait_until_terminal
from tests.worker.jobs import AUDIO, submit, terminal_event_count
from tests.worker.process import WorkerProcess, worker_env

pytestmark = pytest.mark.slow

JOBS: Final = 20
KILLS: Final = 2
CLIPS: Final = [AUDIO / f"en{i}.wav" for i in range(1, 7)]


async def test_jobs_survive_workers_killed_mid_job_and_each_ends_done_once(
    settings: Settings, js: JetStreamContext, topology: Topology, job_store: JobStore, tmp_path: Path
) -> None:
    env = worker_env(settings)
    job_ids = [await submit(js, topology, CLIPS[i % len(CLIPS)]) for i in range(JOBS)]
    killed: list[str] = []
    async with AsyncExitStack() as stack:
        workers = [
            await stack.enter_async_context(WorkerProcess(env, topology, tmp_path / f"worker{i}.log")) for i in range(2)
        ]
        for round_ in range(KILLS * 5):
            if len(killed) == KILLS:
                break
            fresh = [j for j in job_ids if j not in killed]
            running = await wait_until_running(job_store, fresh, within_s=60, on=[w.worker_id for w in workers])
            victim = next(w for w in workers if w.worker_id == running.worker_id)
            victim.kill()
            assert await victim.exit_code() < 0
            # A job of a few seconds can end between being seen running and the kill: only one still held by the
            # dead worker was killed mid-job.
            if (await job_store.require(running.id)).record.status == "running":
                killed.append(running.id)
            workers.remove(victim)
            replacement = WorkerProcess(env, topology, tmp_path / f"replacement{round_}.log")
            workers.append(await stack.enter_async_context(replacement))
        ended = await wait_until_terminal(job_store, job_ids, within_s=150)

    assert {r.status for r in ended.values()} == {"done"}, {i: (r.status, r.error) for i, r in ended.items()}
    counts = await asyncio.gather(*(terminal_event_count(js, j) for j in job_ids))
    assert counts == [1] * JOBS
    assert len(set(killed)) == KILLS
    assert all(ended[j].attempts >= 2 for j in killed)
