"""POST /jobs: streaming the upload, validating the fields, queueing, idempotency and back-pressure."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from gateway.errors import QueueFullError
from gateway.main import GatewayServer
from gateway.submit import publish_job
from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import JobMessage, names
from schemas.codec import decode_job_message
from tests.gateway.conftest import AUDIO, StartGateway, audio_chunks, audio_form, object_names


async def submit(http: aiohttp.ClientSession, form: aiohttp.FormData, **kwargs: object) -> tuple[int, dict, dict]:
    async with http.post("/jobs", data=form, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.json(), dict(response.headers)


async def job_keys(topology: Topology) -> list[str]:
    from nats.js.errors import NoKeysError

    try:
        return await topology.jobs.keys()
    except NoKeysError:
        return []


async def test_submission_answers_202_with_the_job_id_and_its_location(http: aiohttp.ClientSession) -> None:
    status, body, headers = await submit(http, audio_form(language="en"))
    assert status == 202
    assert set(body) == {"job_id"}
    assert headers["Location"] == f"/jobs/{body['job_id']}"


async def test_submitted_job_is_queued_with_the_requested_fields(http: aiohttp.ClientSession) -> None:
    _, body, _ = await submit(http, audio_form(language="de", task="translate", model="base"))
    async with http.get(f"/jobs/{body['job_id']}") as response:
        job = await response.json()
    assert response.status == 200
    assert job["status"] == "queued"
    assert job["language"] == "de"
    assert job["task"] == "translate"
    assert job["model"] == "base"
    assert job["progress"] == 0
    assert job["segments"] == []


async def test_uploaded_audio_is_stored_byte_for_byte(http: aiohttp.ClientSession, topology: Topology) -> None:
    path = AUDIO / "en1_stereo44k.wav"
    _, body, _ = await submit(http, audio_form(path))
    stored = io.BytesIO()
    await topology.audio.get(body["job_id"], writeinto=stored)
    assert stored.getvalue() == path.read_bytes()


async def test_job_message_is_published_on_its_models_subject_with_the_job_id_as_message_id(
    http: aiohttp.ClientSession, js: JetStreamContext
) -> None:
    _, body, _ = await submit(http, audio_form(language="en", webhook_url="http://127.0.0.1:9/hook"))
    msg = await js.get_last_msg(names.JOBS_STREAM, names.model_jobs_subject("tiny.en"))
    message = decode_job_message(msg.data)
    assert message.model == "tiny.en"
    assert msg.headers is not None and msg.headers[names.MSG_ID_HEADER] == body["job_id"]
    assert message.job_id == body["job_id"]
    assert message.audio_object == body["job_id"]
    assert message.language == "en"
    assert message.webhook_url == "http://127.0.0.1:9/hook"


async def test_a_queued_job_shows_its_webhook_before_any_attempt(http: aiohttp.ClientSession) -> None:
    _, body, _ = await submit(http, audio_form(webhook_url="http://127.0.0.1:9/hook"))

    async with http.get(f"/jobs/{body['job_id']}") as response:
        job = await response.json()

    assert job["status"] == "queued"
    assert job["webhook"]["url"] == "http://127.0.0.1:9/hook"
    assert job["webhook"]["attempts"] == 0 and job["webhook"]["delivered_at"] is None


async def test_fields_may_come_before_the_audio(http: aiohttp.ClientSession) -> None:
    status, body, _ = await submit(http, audio_form(audio_first=False, language="es", task="transcribe", model="base"))
    assert status == 202
    async with http.get(f"/jobs/{body['job_id']}") as response:
        assert (await response.json())["language"] == "es"


async def test_empty_language_means_auto_detection(http: aiohttp.ClientSession) -> None:
    _, body, _ = await submit(http, audio_form(language=""))
    async with http.get(f"/jobs/{body['job_id']}") as response:
        assert (await response.json())["language"] is None


@pytest.mark.parametrize("language", ["auto", "english", "xx", "en-US"])
async def test_unknown_language_is_refused_naming_the_accepted_form(
    http: aiohttp.ClientSession, topology: Topology, language: str
) -> None:
    status, body, _ = await submit(http, audio_form(language=language))
    assert status == 422
    assert repr(language) in body["error"]
    assert "ISO 639-1" in body["error"]
    assert await object_names(topology) == []
    assert await job_keys(topology) == []


async def test_unknown_task_is_refused(http: aiohttp.ClientSession) -> None:
    status, body, _ = await submit(http, audio_form(task="summarize"))
    assert status == 422
    assert "'transcribe' or 'translate'" in body["error"]


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "/relative/hook", "not a url"])
async def test_webhook_url_must_be_absolute_http(http: aiohttp.ClientSession, url: str) -> None:
    status, body, _ = await submit(http, audio_form(webhook_url=url))
    assert status == 422
    assert "webhook_url" in body["error"]
    assert "http" in body["error"]


async def test_webhook_url_on_loopback_is_refused_unless_private_targets_are_allowed(
    start_gateway: StartGateway,
) -> None:
    _, http = await start_gateway(allow_private_targets=False)
    status, body, _ = await submit(http, audio_form(webhook_url="http://127.0.0.1:8080/hook"))
    assert status == 422
    assert "loopback" in body["error"]


async def test_invalid_field_after_the_audio_removes_the_stored_audio(
    http: aiohttp.ClientSession, topology: Topology, js: JetStreamContext
) -> None:
    status, _, _ = await submit(http, audio_form(AUDIO / "en1_stereo44k.wav", audio_first=True, language="zz"))
    assert status == 422
    assert await object_names(topology) == []
    assert await job_keys(topology) == []
    assert await audio_chunks(js) == 0


async def test_missing_audio_part_is_a_bad_request(http: aiohttp.ClientSession, topology: Topology) -> None:
    status, body, _ = await submit(http, audio_form(None, language="en"))
    assert status == 400
    assert "`audio`" in body["error"]
    assert await job_keys(topology) == []


async def test_empty_audio_part_is_a_bad_request(http: aiohttp.ClientSession, topology: Topology) -> None:
    status, body, _ = await submit(http, audio_form(AUDIO / "empty.wav"))
    assert status == 400
    assert "empty" in body["error"]
    assert await object_names(topology) == []


async def test_two_audio_parts_are_a_bad_request(http: aiohttp.ClientSession, topology: Topology) -> None:
    form = audio_form()
    form.add_field("audio", b"second", filename="b.wav")
    status, body, _ = await submit(http, form)
    assert status == 400
    assert "more than one `audio`" in body["error"]
    assert await object_names(topology) == []


async def test_non_multipart_body_is_refused_with_how_to_send_it(http: aiohttp.ClientSession) -> None:
    async with http.post("/jobs", data=b"audio", headers={"Content-Type": "text/plain"}) as response:
        body = await response.json()
    assert response.status == 415
    assert "multipart/form-data" in body["error"]
    assert "application/json" in body["error"]


async def test_upload_over_the_limit_is_refused_from_its_content_length(
    start_gateway: StartGateway, topology: Topology
) -> None:
    _, http = await start_gateway(max_upload_bytes=100_000)
    status, body, _ = await submit(http, audio_form(AUDIO / "en1_stereo44k.wav"))
    assert status == 413
    assert "100000 bytes" in body["error"]
    assert await object_names(topology) == []
    assert await job_keys(topology) == []


async def test_upload_over_the_limit_is_stopped_while_streaming(
    start_gateway: StartGateway, topology: Topology, js: JetStreamContext
) -> None:
    _, http = await start_gateway(max_upload_bytes=350_000)
    size = (AUDIO / "en1_stereo44k.wav").stat().st_size
    assert size > 350_000
    status, body, _ = await submit(http, audio_form(AUDIO / "en1_stereo44k.wav"))
    assert status == 413
    assert "350000 bytes" in body["error"]
    assert "received before stopping" in body["error"]
    assert await object_names(topology) == []
    assert await audio_chunks(js) == 0
    assert await job_keys(topology) == []


async def test_chunked_upload_over_the_limit_is_stopped_while_streaming(
    start_gateway: StartGateway, topology: Topology, js: JetStreamContext
) -> None:
    _, http = await start_gateway(max_upload_bytes=1_000_000)

    async def endless() -> object:
        for _ in range(64):
            yield b"\0" * 65536

    with aiohttp.MultipartWriter("form-data") as writer:
        part = writer.append(endless())  # type: ignore[arg-type]
        part.set_content_disposition("form-data", name="audio", filename="big.raw")
    async with http.post("/jobs", data=writer) as response:
        body = await response.json()
    assert response.status == 413
    assert "1000000 bytes" in body["error"]
    assert await object_names(topology) == []
    assert await audio_chunks(js) == 0


async def test_full_queue_answers_429_with_retry_after_and_keeps_nothing(
    start_gateway: StartGateway, topology: Topology
) -> None:
    _, http = await start_gateway(max_queued_jobs=2)
    for _ in range(2):
        assert (await submit(http, audio_form()))[0] == 202
    status, body, headers = await submit(http, audio_form())
    assert status == 429
    assert int(headers["Retry-After"]) > 0
    assert "queue is full" in body["error"]
    assert "2 jobs" in body["error"]
    assert len(await job_keys(topology)) == 2
    assert len(await object_names(topology)) == 2


async def test_same_idempotency_key_returns_the_same_job(
    http: aiohttp.ClientSession, topology: Topology, js: JetStreamContext
) -> None:
    headers = {"Idempotency-Key": "upload-7f3a"}
    first = await submit(http, audio_form(), headers=headers)
    second = await submit(http, audio_form(), headers=headers)
    assert first[0] == second[0] == 202
    assert first[1]["job_id"] == second[1]["job_id"]
    assert second[2]["Idempotent-Replayed"] == "true"
    assert await job_keys(topology) == [first[1]["job_id"]]
    assert (await js.stream_info(names.JOBS_STREAM)).state.messages == 1


async def test_different_idempotency_keys_make_different_jobs(http: aiohttp.ClientSession) -> None:
    first = await submit(http, audio_form(), headers={"Idempotency-Key": "a"})
    second = await submit(http, audio_form(), headers={"Idempotency-Key": "b"})
    assert first[1]["job_id"] != second[1]["job_id"]


async def test_idempotency_key_of_a_refused_submission_can_be_reused(
    http: aiohttp.ClientSession, job_store: JobStore
) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    assert (await submit(http, audio_form(language="zz"), headers=headers))[0] == 422
    status, body, _ = await submit(http, audio_form(language="en"), headers=headers)
    assert status == 202
    assert await job_store.get(body["job_id"]) is not None


async def test_error_bodies_are_json_with_an_error_message(http: aiohttp.ClientSession) -> None:
    async with http.post("/jobs", data=b"x", headers={"Content-Type": "text/plain"}) as response:
        assert response.content_type == "application/json"
        body = json.loads(await response.text())
    assert set(body) >= {"error"}
    assert body["error"]


async def test_client_vanishing_mid_upload_leaves_nothing_behind(
    gateway: GatewayServer, topology: Topology, js: JetStreamContext
) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    preamble = (
        b'--b\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    writer.write(
        b"POST /jobs HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 50000000\r\n\r\n" + preamble + b"\0" * 1_000_000
    )
    await writer.drain()
    for _ in range(400):
        if await audio_chunks(js) > 0:
            break
        await asyncio.sleep(0.05)
    assert await audio_chunks(js) > 0, "the upload never reached the object store"
    writer.close()
    await writer.wait_closed()
    for _ in range(400):
        if await audio_chunks(js) == 0:
            break
        await asyncio.sleep(0.05)
    assert await audio_chunks(js) == 0
    assert await object_names(topology) == []
    assert await job_keys(topology) == []


async def test_queue_filling_up_between_check_and_publish_still_answers_429(
    start_gateway: StartGateway, js: JetStreamContext
) -> None:
    server, _ = await start_gateway(max_queued_jobs=1)
    first = JobMessage(job_id="first", audio_object="first")
    await publish_job(server.app, first)
    with pytest.raises(QueueFullError, match="queue is full") as refused:
        await publish_job(server.app, JobMessage(job_id="second", audio_object="second"))
    assert refused.value.retry_after_s > 0
    assert (await js.stream_info(names.JOBS_STREAM)).state.messages == 1


async def test_submission_while_nats_is_down_is_503_and_works_again_after(
    http: aiohttp.ClientSession, nats_server: EmbeddedNats, nc: Client
) -> None:
    await asyncio.to_thread(nats_server.stop)
    for _ in range(200):
        if not nc.is_connected:
            break
        await asyncio.sleep(0.05)
    status, body, _ = await submit(http, audio_form())
    assert status == 503
    assert "try again" in body["error"]
    await asyncio.to_thread(nats_server.start)
    for _ in range(400):
        if nc.is_connected:
            break
        await asyncio.sleep(0.05)
    status, _, _ = await submit(http, audio_form())
    assert status == 202


async def raw_request(gateway: GatewayServer, head: bytes) -> bytes:
    """Send only a request head and return what the gateway answers before any body arrives."""
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_oversized_upload_is_refused_before_the_client_sends_it(start_gateway: StartGateway) -> None:
    server, _ = await start_gateway(max_upload_bytes=1_000_000)
    answer = await raw_request(
        server,
        b"POST /jobs HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 5000000\r\nExpect: 100-continue\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413")


async def test_upload_within_the_limit_is_told_to_continue(gateway: GatewayServer) -> None:
    answer = await raw_request(
        gateway,
        b"POST /jobs HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 500000\r\nExpect: 100-continue\r\n\r\n",
    )
    assert answer == b"HTTP/1.1 100 Continue\r\n\r\n"


async def test_submission_with_expect_100_continue_is_accepted(http: aiohttp.ClientSession) -> None:
    status, body, _ = await submit(http, audio_form(AUDIO / "en1_stereo44k.wav"), expect100=True)
    assert status == 202
    assert body["job_id"]
