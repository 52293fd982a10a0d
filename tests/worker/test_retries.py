"""Audio from URLs, transient faults retried with back-off, and the dead-letter path when deliveries run out."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
import pytest
from aiohttp import web
from nats.js import JetStreamContext

from jetscribe.config import Settings
from jetscribe.jobqueue import tenant_consumer_config
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import DecodeOptions, JobMessage, names
from tests.worker.conftest import StartWorker
from tests.worker.jobs import AUDIO, TEXTS, jobs_left, new_job_id, publish_job, recall, terminal_event
from worker.service import Worker


@dataclass
class AudioServer:
    """A real HTTP server on loopback serving the audio fixtures, with a few misbehaving routes."""

    url: str
    hits: dict[str, int] = field(default_factory=dict)


@pytest.fixture
async def audio_server() -> AsyncIterator[AudioServer]:
    server = AudioServer(url="")

    def count(request: web.Request) -> int:
        server.hits[request.path] = server.hits.get(request.path, 0) + 1
        return server.hits[request.path]

    async def audio(request: web.Request) -> web.StreamResponse:
        count(request)
        return web.FileResponse(AUDIO / request.match_info["name"])

    async def flaky(request: web.Request) -> web.StreamResponse:
        if count(request) == 1:
            return web.Response(status=503, text="busy")
        return web.FileResponse(AUDIO / "en2.wav")

    async def slow(request: web.Request) -> web.StreamResponse:
        count(request)
        await asyncio.sleep(30)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/audio/{name}", audio)
    app.router.add_get("/flaky.wav", flaky)
    app.router.add_get("/slow.wav", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def submit_url(js: JetStreamContext, url: str, *, model: str | None = None) -> str:
    job_id = new_job_id()
    await publish_job(js, JobMessage(job_id=job_id, audio_url=url, model=model, options=DecodeOptions(beam_size=1)))
    return job_id


async def test_audio_url_is_downloaded_and_transcribed(
    worker: Worker, js: JetStreamContext, job_store: JobStore, audio_server: AudioServer
) -> None:
    job_id = await submit_url(js, f"{audio_server.url}/audio/en1.mp3")

    event = await terminal_event(js, job_id)

    assert event.type == "completed", event.job.error
    assert audio_server.hits == {"/audio/en1.mp3": 1}
    segments = await job_store.get_transcript(event.transcript_object or "")
    assert recall(TEXTS["en1"], " ".join(s.text for s in segments)) >= 0.7


async def test_audio_url_not_found_fails_at_once_naming_the_status(
    worker: Worker, js: JetStreamContext, job_store: JobStore, audio_server: AudioServer
) -> None:
    job_id = await submit_url(js, f"{audio_server.url}/missing.wav")

    event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error == f"downloading {audio_server.url}/missing.wav failed: HTTP 404 Not Found"
    assert (await job_store.require(job_id)).record.attempts == 1


async def test_audio_url_over_the_size_limit_fails(
    start_worker: StartWorker, js: JetStreamContext, audio_server: AudioServer
) -> None:
    async with start_worker(max_audio_url_bytes=10_000):
        job_id = await submit_url(js, f"{audio_server.url}/audio/en1.wav")
        event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error is not None
    assert "over the 10000-byte limit (JETSCRIBE_MAX_AUDIO_URL_BYTES)" in event.job.error


async def test_private_audio_url_is_refused_unless_allowed(
    start_worker: StartWorker, js: JetStreamContext, audio_server: AudioServer
) -> None:
    async with start_worker(allow_private_targets=False):
        job_id = await submit_url(js, f"{audio_server.url}/audio/en1.wav")
        event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error is not None and "loopback address" in event.job.error
    assert audio_server.hits == {}


async def test_transient_http_error_is_retried(
    worker: Worker, js: JetStreamContext, job_store: JobStore, audio_server: AudioServer
) -> None:
    job_id = await submit_url(js, f"{audio_server.url}/flaky.wav")

    event = await terminal_event(js, job_id)

    assert event.type == "completed", event.job.error
    assert audio_server.hits["/flaky.wav"] == 2
    assert (await job_store.require(job_id)).record.attempts == 2


async def test_unreachable_audio_url_ends_failed_once_deliveries_run_out(
    start_worker: StartWorker, js: JetStreamContext, job_store: JobStore
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/audio.wav"
    async with start_worker(max_deliver=2):
        job_id = await submit_url(js, url)
        event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error is not None
    assert event.job.error.startswith(f"gave up after 2 deliveries: downloading {url} failed: Cannot connect")
    assert (await job_store.require(job_id)).record.attempts == 2
    assert await jobs_left(js) == 0


async def test_audio_url_that_never_answers_times_out_and_is_retried(
    start_worker: StartWorker, js: JetStreamContext, audio_server: AudioServer
) -> None:
    async with start_worker(max_deliver=2, fetch_timeout_s=1.0):
        job_id = await submit_url(js, f"{audio_server.url}/slow.wav")
        event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert (
        event.job.error
        == f"gave up after 2 deliveries: downloading {audio_server.url}/slow.wav did not finish within 1 s"
    )
    assert audio_server.hits["/slow.wav"] == 2


async def test_job_whose_workers_all_died_ends_failed_via_the_dead_letter_handler(
    settings: Settings, start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    crashing = msgspec.structs.replace(settings, max_deliver=2, ack_wait_s=1.0)
    await js.add_consumer(names.JOBS_STREAM, tenant_consumer_config(crashing, "tiny.en", names.DEFAULT_TENANT))
    job_id = await submit_url(js, "https://example.invalid/never-fetched.wav", model="tiny.en")
    sub = await js.pull_subscribe_bind(names.tenant_consumer("tiny.en", names.DEFAULT_TENANT), names.JOBS_STREAM)
    for _ in range(2):  # taken and never acknowledged: a worker that dies each time
        await sub.fetch(1, timeout=10)
    with pytest.raises(TimeoutError):  # no third delivery; the server emits MAX_DELIVERIES instead
        await sub.fetch(1, timeout=3)
    await sub.unsubscribe()

    async with start_worker(max_deliver=2, ack_wait_s=1.0):
        event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error is not None
    assert event.job.error.startswith("gave up after 2 deliveries: no worker finished it in time")
    assert await jobs_left(js) == 0
