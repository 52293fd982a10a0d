"""What `/health` shows of the diarization stage: its live workers, the jobs waiting for and in it, and a degraded
service when transcribed jobs wait with no diarization worker alive."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

import aiohttp
from nats.js import JetStreamContext

from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from tests.diarization.conftest import StartDiarizer
from tests.diarization.test_stage_faults import status_reached
from tests.worker.jobs import submit, terminal_event
from worker.service import Worker

WITHIN_S: Final = 120.0
EMPTY: Final = {"pending": 0, "in_flight": 0, "oldest_waiting_s": None}


async def health(http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
    async with http.get("/health") as response:
        return response.status, await response.json()


async def emptied(http: aiohttp.ClientSession) -> dict[str, Any]:
    """`/health`'s body once the diarization stage's queue is empty (the last ack lands just after the event)."""
    async with asyncio.timeout(10):
        while True:
            _, body = await health(http)
            if body["diarization"]["queue"] == EMPTY:
                return body
            await asyncio.sleep(0.1)


async def test_health_lists_a_live_diarization_worker_until_it_stops(
    http: aiohttp.ClientSession, worker: Worker, start_diarizer: StartDiarizer
) -> None:
    async with start_diarizer() as diarizer:
        status, body = await health(http)

        assert status == 200, body["problems"]
        [listed] = body["diarization"]["diarizers"]
        assert (listed["worker_id"], listed["current_jobs"]) == (diarizer.worker_id, [])
        assert listed["encoder"] == "resemblyzer-ge2e-0.1.4"
        assert body["diarization"]["queue"] == EMPTY

    _, after = await health(http)
    assert after["diarization"]["diarizers"] == []


async def test_health_counts_jobs_waiting_for_diarization_and_is_degraded_while_no_diarization_worker_is_alive(
    http: aiohttp.ClientSession,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    worker: Worker,
    start_diarizer: StartDiarizer,
    conversation_wav: Path,
) -> None:
    job_id = await submit(js, topology, conversation_wav, language="en", options={"diarize": True})
    await status_reached(job_store, job_id, "diarizing")

    status, body = await health(http)

    assert status == 503
    assert body["diarization"]["queue"]["pending"] == 1
    assert body["diarization"]["queue"]["oldest_waiting_s"] >= 0
    assert body["problems"] == [
        "1 job(s) wait for diarization and no diarization worker is alive (no heartbeat in the jetscribe_diarizers "
        "bucket): run `jetscribe diarizer`"
    ]

    async with start_diarizer():
        event = await terminal_event(js, job_id, within_s=WITHIN_S)
        assert event.type == "completed", event.job.error
        assert (await emptied(http))["problems"] == []
