"""Bad input not covered elsewhere: malformed multipart, unknown fields, an audio URL that never answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import msgspec
import pytest
from aiohttp import web
from nats.aio.client import Client
from nats.js import JetStreamContext

from gateway.main import GatewayServer
from gateway.submit import MAX_FORM_PARTS
from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import DecodeOptions, JobMessage, names
from tests.gateway.conftest import AUDIO, StartGateway, audio_chunks, audio_form, object_names
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
    async with http.post("/jobs", data=audio_form(speaker_labels="true", priority="high")) as response:
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


async def test_fields_arriving_a_few_bytes_at_a_time_are_read_whole(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    fields = multipart(
        b'Content-Disposition: form-data; name="language"\r\n\r\nen',
        b'Content-Disposition: form-data; name="webhook_url"\r\n\r\nhttp://127.0.0.1:9/hooks/done',
        closed=False,
    )
    audio = multipart(AUDIO_PART)
    body = fields + audio
    head = (
        f"POST /jobs HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: multipart/form-data; "
        f"boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()

    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        for start in range(0, len(fields), 3):
            writer.write(fields[start : start + 3])
            await writer.drain()
            await asyncio.sleep(0.002)
        writer.write(audio)
        answer = await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()
        await writer.wait_closed()

    assert answer.startswith(b"HTTP/1.1 202"), answer
    job_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["job_id"]
    async with http.get(f"/jobs/{job_id}") as response:
        job = await response.json()
    assert job["language"] == "en"
    assert job["webhook"]["url"] == "http://127.0.0.1:9/hooks/done"


async def test_unknown_fields_beyond_the_part_limit_are_refused_and_keep_nothing(
    http: aiohttp.ClientSession, topology: Topology
) -> None:
    extra = {f"extra{n}": "x" for n in range(MAX_FORM_PARTS)}
    async with http.post("/jobs", data=audio_form(**extra)) as response:
        assert response.status == 400
        assert f"more than {MAX_FORM_PARTS} parts" in (await response.json())["error"]
    assert await object_names(topology) == []


async def test_unknown_field_past_the_body_limit_is_413_and_keeps_nothing(
    start_gateway: StartGateway, topology: Topology, js: JetStreamContext
) -> None:
    _, http = await start_gateway(max_upload_bytes=200_000)

    async def padding() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 65536

    with aiohttp.MultipartWriter("form-data") as form:
        audio = form.append((AUDIO / "en1.wav").read_bytes())
        audio.set_content_disposition("form-data", name="audio", filename="en1.wav")
        unknown = form.append(padding())  # type: ignore[arg-type]
        unknown.set_content_disposition("form-data", name="padding")
    async with http.post("/jobs", data=form) as response:
        assert response.status == 413
        assert "the form is larger than this service accepts" in (await response.json())["error"]
    assert await object_names(topology) == []
    assert await audio_chunks(js) == 0


@pytest.mark.parametrize("url", ["HTTP://127.0.0.1:9/hook", "http://127.0.0.1:9/my hook", "https://127.0.0.1:9/a\tb"])
async def test_webhook_url_a_worker_would_refuse_is_422_at_submit(
    http: aiohttp.ClientSession, topology: Topology, js: JetStreamContext, url: str
) -> None:
    async with http.post("/jobs", data=audio_form(webhook_url=url)) as response:
        assert response.status == 422
        assert "webhook_url" in (await response.json())["error"]
    assert await object_names(topology) == []
    assert (await js.stream_info(names.JOBS_STREAM)).state.messages == 0
