"""Bad input not covered elsewhere: malformed multipart, unknown fields, an audio URL that never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import msgspec
import pytest
from aiohttp import web
from nats.aio.client import Client
from nats.js import JetStreamContext

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import DecodeOptions, JobMessage
from tests.gateway.conftest import AUDIO, audio_form, object_names
from tests.worker.jobs import new_job_id, publish_job, submit, terminal_event
from worker.service import Worker

BOUNDARY = "jetscribe-test-boundary"


def multipart(*parts: bytes, closed: bool = True) -> bytes:
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + BOUNDARY.encode() + b"--\r\n" if closed else b"")


AUDIO_PART = (
    b'Content-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n' + (AUDIO / "en1.wav").read_bytes()
)
HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def test_part_header_with_control_characters_is_400_json(http: aiohttp.ClientSession, topology: Topology) -> None:
    bad_part = b'Content-Disposition: form-data; name="\xf2\x10\x14"\r\n\r\n20.0'
    async with http.post("/jobs", data=multipart(AUDIO_PART, bad_part), headers=HEADERS) as response:
        assert response.status == 400
        assert (await response.json())["error"].startswith("the multipart body is malformed")
    assert await object_names(topology) == []


async def test_body_without_its_closing_boundary_is_refused_and_keeps_nothing(
    http: aiohttp.ClientSession, topology: Topology
) -> None:
    async with http.post("/jobs", data=multipart(AUDIO_PART, closed=False), headers=HEADERS) as response:
        assert response.status == 400, await response.text()
        assert "error" in await response.json()
    assert await object_names(topology) == []


async def test_unknown_form_fields_are_ignored(http: aiohttp.ClientSession) -> None:
    async with http.post("/jobs", data=audio_form(model="large-v3", priority="high")) as response:
        assert response.status == 202
        job_id = (await response.json())["job_id"]
    async with http.get(f"/jobs/{job_id}") as response:
        assert (await response.json())["status"] == "queued"


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """An HTTP server that accepts the request and never answers."""
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/{name}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    never.set()
    await runner.cleanup()


async def test_audio_url_that_never_answers_fails_with_a_timeout_and_the_worker_serves_on(
    settings: Settings,
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    silent_server: str,
) -> None:
    impatient = msgspec.structs.replace(settings, max_deliver=1, fetch_timeout_s=1.0)
    job_id = new_job_id()
    url = f"{silent_server}/talk.wav"
    async with Worker(impatient, nc):
        message = JobMessage(job_id=job_id, audio_url=url, options=DecodeOptions(beam_size=1))
        await publish_job(js, msgspec.structs.replace(message, submitted_at=datetime.now(UTC)))
        failed = await terminal_event(js, job_id)
        good = await submit(js, topology, AUDIO / "en2.wav")
        completed = await terminal_event(js, good)

    assert failed.type == "failed"
    assert failed.job.error is not None and "did not finish within 1 s" in failed.job.error
    assert url in failed.job.error
    assert completed.type == "completed"
    assert (await job_store.require(good)).record.status == "done"
