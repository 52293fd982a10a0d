"""Refusals of the OpenAI-compatible routes, in OpenAI's error shape as the official SDK raises them; and a
client that leaves before its answer."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec
import openai
import pytest
from openai import AsyncOpenAI

from gateway.main import GatewayServer
from jetscribe.topology import ensure_topology
from tests.openai_api.conftest import API_KEY, AUDIO, Service

pytestmark = pytest.mark.asyncio(loop_scope="module")


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}, body
    return body


async def test_a_form_without_file_is_400_naming_file(http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData({"model": "whisper-1"}, default_to_multipart=True)
    async with http.post("/v1/audio/transcriptions", data=form) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "file" and "`file`" in error["message"]


async def test_an_unknown_response_format_is_400(openai_client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await openai_client.audio.transcriptions.create(
            file=AUDIO / "en1.wav",
            model="whisper-1",
            response_format="docx",  # type: ignore[arg-type]
        )
    error = error_of(raised.value)
    assert error["param"] == "response_format" and "verbose_json" in error["message"]


async def test_known_speaker_names_are_400_saying_voices_are_not_matched_to_references(
    openai_client: AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await openai_client.audio.transcriptions.create(
            file=AUDIO / "en1.wav",
            model="whisper-1",
            response_format="diarized_json",
            known_speaker_names=["agent", "customer"],
            known_speaker_references=["data:audio/wav;base64,AAAA", "data:audio/wav;base64,AAAA"],
        )
    error = error_of(raised.value)
    assert error["param"] == "known_speaker_names[]" and error["code"] == "unsupported_value"
    assert "reference audio" in error["message"] and "A, B" in error["message"]


async def test_diarized_json_with_stream_is_400_naming_stream(http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData(
        {"model": "whisper-1", "response_format": "diarized_json", "stream": "true"}, default_to_multipart=True
    )
    form.add_field("file", (AUDIO / "en1.wav").read_bytes(), filename="en1.wav")
    async with http.post("/v1/audio/transcriptions", data=form) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["param"] == "stream" and "diarized_json" in error["message"]


async def test_diarized_json_with_diarize_false_is_400_naming_diarize(http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData(
        {"model": "whisper-1", "response_format": "diarized_json", "diarize": "false"}, default_to_multipart=True
    )
    form.add_field("file", (AUDIO / "en1.wav").read_bytes(), filename="en1.wav")
    async with http.post("/v1/audio/transcriptions", data=form) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["param"] == "diarize" and "diarized_json" in error["message"]


async def test_impossible_speaker_counts_with_diarized_json_are_400_saying_what_to_fix(
    openai_client: AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await openai_client.audio.transcriptions.create(
            file=AUDIO / "en1.wav",
            model="whisper-1",
            response_format="diarized_json",
            extra_body={"min_speakers": "4", "max_speakers": "2"},
        )
    assert "min_speakers" in error_of(raised.value)["message"]


async def test_diarized_json_is_400_on_translations(openai_client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised, pytest.deprecated_call():
        await openai_client.audio.translations.create(
            file=AUDIO / "en1.wav",
            model="whisper-1",
            response_format="diarized_json",  # type: ignore[arg-type]
        )
    error = error_of(raised.value)
    assert error["param"] == "response_format" and "verbose_json" in error["message"]
    assert "diarized_json" not in error["message"].split("use one of")[1]


async def test_a_temperature_above_one_is_400_naming_temperature(openai_client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await openai_client.audio.transcriptions.create(file=AUDIO / "en1.wav", model="whisper-1", temperature=1.5)
    error = error_of(raised.value)
    assert error["param"] == "temperature" and error["code"] == "invalid_value"


async def test_an_unserved_model_is_400_listing_the_models_on_offer(
    openai_client: AsyncOpenAI, service: Service
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await openai_client.audio.transcriptions.create(file=AUDIO / "en1.wav", model="gpt-4o-transcribe")
    error = error_of(raised.value)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert service.settings.whisper_model in error["message"] and "whisper-1" in error["message"]


async def test_a_file_that_is_not_audio_fails_its_job_with_400_naming_it(
    openai_client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await openai_client.audio.transcriptions.create(file=AUDIO / "not_audio.txt", model="whisper-1")
    error = error_of(raised.value)
    assert error["code"] == "job_failed"
    job_id = raised.value.response.headers["x-job-id"]
    assert job_id in error["message"]
    async with http.get(f"/jobs/{job_id}") as response:
        job = await response.json()
    assert job["status"] == "failed" and job["error"] in error["message"]


async def test_a_wrong_api_key_is_401(service: Service) -> None:
    async with AsyncOpenAI(base_url=f"{service.url}/v1", api_key="not-a-key", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as raised:
            await client.audio.transcriptions.create(file=AUDIO / "en1.wav", model="whisper-1")
    assert error_of(raised.value)["code"] == "invalid_api_key"


async def test_a_request_without_an_api_key_is_401_in_openai_shape(service: Service) -> None:
    async with aiohttp.ClientSession(base_url=service.url) as anonymous, anonymous.get("/v1/models") as response:
        assert response.status == 401
        error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error" and "API key" in error["message"]


async def test_a_client_that_leaves_cancels_its_job(http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData({"model": "whisper-1"}, default_to_multipart=True)
    form.add_field("file", (AUDIO / "long60.ogg").read_bytes(), filename="long60.ogg")

    async def request() -> None:
        async with http.post("/v1/audio/transcriptions", data=form) as response:
            await response.read()

    leaving = asyncio.create_task(request())
    job_id = await wait_for_job(http, "running")
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert await status_after_running(http, job_id) == "cancelled"


async def wait_for_job(http: aiohttp.ClientSession, status: str) -> str:
    async with asyncio.timeout(60):
        while True:
            async with http.get("/jobs", params={"status": status}) as response:
                jobs = (await response.json())["jobs"]
            if jobs:
                return str(jobs[0]["id"])
            await asyncio.sleep(0.2)


async def status_after_running(http: aiohttp.ClientSession, job_id: str) -> str:
    async with asyncio.timeout(60):
        while True:
            async with http.get(f"/jobs/{job_id}") as response:
                status = str((await response.json())["status"])
            if status != "running":
                return status
            await asyncio.sleep(0.2)


async def test_a_request_that_waits_too_long_gets_504_naming_its_job_which_goes_on(
    service: Service, http: aiohttp.ClientSession
) -> None:
    impatient = msgspec.structs.replace(service.settings, openai_wait_s=0.5)
    topology = await ensure_topology(service.nc.jetstream(), impatient)
    async with (
        GatewayServer(impatient, service.nc, topology) as gateway,
        AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=2) as client,
    ):
        with pytest.raises(openai.APIStatusError) as raised:
            await client.audio.transcriptions.create(file=AUDIO / "long60.ogg", model="whisper-1")
    assert raised.value.status_code == 504
    assert raised.value.response.headers["x-should-retry"] == "false"
    job_id = raised.value.response.headers["x-job-id"]
    error = error_of(raised.value)
    assert error["code"] == "timeout" and f"GET /jobs/{job_id}" in error["message"]
    async with http.get("/jobs") as response:
        jobs = [job for job in (await response.json())["jobs"] if job["filename"] == "long60.ogg"]
    assert [job["id"] for job in jobs if job["status"] in ("queued", "running")] == [job_id]
    async with http.delete(f"/jobs/{job_id}") as response:
        assert response.status == 204
