"""Every job has a wall-clock limit scaled to its audio: past it the work stops, the job fails naming the limit
and the same slot takes the next job."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from nats.js import JetStreamContext

from jetscribe.ffmpeg import ffmpeg_binary
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import DecodeOptions, JobMessage
from tests.worker.conftest import StartWorker
from tests.worker.jobs import AUDIO, new_job_id, publish_job, submit, terminal_event

pytestmark = pytest.mark.slow


@pytest.fixture
def ten_minutes(tmp_path: Path) -> Path:
    """Ten minutes of speech: far more than tiny.en can transcribe in ten seconds on a CPU."""
    path = tmp_path / "long600.ogg"
    subprocess.run(
        [ffmpeg_binary(), "-loglevel", "error", "-stream_loop", "9", "-i", str(AUDIO / "long60.ogg"), "-c", "copy",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture
async def trickling_server() -> AsyncIterator[str]:
    """An HTTP server that starts an audio body, sends its first kilobyte and then nothing more."""
    stop = asyncio.Event()

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "audio/wav", "Content-Length": "10000000"})
        await response.prepare(request)
        await response.write((AUDIO / "en1.wav").read_bytes()[:1024])
        await stop.wait()
        return response

    app = web.Application()
    app.router.add_get("/{name}", trickle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    stop.set()
    await runner.cleanup()


async def test_job_past_its_time_limit_is_stopped_and_failed_and_the_slot_takes_the_next(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore, ten_minutes: Path
) -> None:
    # 20 s + 1 ms per audio second: far less than ten minutes of audio take, and room for the next job's 3 s clip
    # even on busy cores.
    async with start_worker(job_timeout_s=20.0, job_timeout_per_audio_s=0.001) as only:
        job_id = await submit(js, topology, ten_minutes)
        failed = await terminal_event(js, job_id, within_s=120)
        next_job = await submit(js, topology, AUDIO / "en1.wav")
        completed = await terminal_event(js, next_job)
        jobs_done = only.jobs_done

    assert failed.type == "failed"
    error = failed.job.error or ""
    assert error.startswith("the job ran out of time while transcribing: its limit is 0:00:21")
    assert "JETSCRIBE_JOB_TIMEOUT_S=20 + JETSCRIBE_JOB_TIMEOUT_PER_AUDIO_S=0.001" in error
    record = (await job_store.require(job_id)).record
    assert record.status == "failed" and record.attempts == 1 and record.transcript_object is None
    assert completed.type == "completed" and jobs_done == 1


async def test_audio_url_that_stops_sending_fails_on_the_time_limit_while_fetching(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore, trickling_server: str
) -> None:
    async with start_worker(job_timeout_s=4.0, fetch_timeout_s=600.0):
        job_id = new_job_id()
        message = JobMessage(
            job_id=job_id,
            audio_url=f"{trickling_server}/talk.wav",
            options=DecodeOptions(beam_size=1),
            submitted_at=datetime.now(UTC),
        )
        await publish_job(js, message)
        failed = await terminal_event(js, job_id, within_s=60)
        next_job = await submit(js, topology, AUDIO / "en2.wav")
        completed = await terminal_event(js, next_job)

    assert failed.type == "failed"
    assert (failed.job.error or "").startswith("the job ran out of time while fetching the audio")
    assert (await job_store.require(job_id)).record.attempts == 1
    assert completed.type == "completed"
