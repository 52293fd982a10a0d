"""`POST /jobs` with `audio_url` instead of an `audio` file: the worker downloads the audio."""

from __future__ import annotations

import string

import aiohttp
import pytest

from client import ApiError, JetscribeClient
from gateway.main import GatewayServer
from tests.frontends.conftest import AUDIO, TEXTS, StartGateway


def words(text: str) -> set[str]:
    return set(text.lower().translate(str.maketrans("", "", string.punctuation)).split())


@pytest.mark.usefixtures("worker")
async def test_a_job_from_an_audio_url_is_downloaded_and_transcribed(gateway: GatewayServer, audio_site: str) -> None:
    async with JetscribeClient(gateway.url) as client:
        job_id = await client.submit_url(f"{audio_site}/en1.mp3", language="en")
        job = await client.wait(job_id)

    assert job.status == "done", job.error
    assert job.filename == "en1.mp3"
    expected = words(TEXTS["en1"])
    assert len(expected & words(" ".join(s.text for s in job.segments))) >= 0.7 * len(expected)


async def test_a_form_with_both_an_audio_file_and_an_audio_url_is_refused(
    gateway: GatewayServer, audio_site: str
) -> None:
    form = aiohttp.FormData()
    form.add_field("audio", (AUDIO / "en1.wav").read_bytes(), filename="en1.wav")
    form.add_field("audio_url", f"{audio_site}/en1.wav")
    async with aiohttp.ClientSession() as http, http.post(f"{gateway.url}/jobs", data=form) as response:
        body = await response.json()

    assert response.status == 400
    assert "send one of them" in body["error"]


async def test_a_form_without_audio_names_both_ways_to_send_it(gateway: GatewayServer) -> None:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("language", "en")
    async with aiohttp.ClientSession() as http, http.post(f"{gateway.url}/jobs", data=form) as response:
        body = await response.json()

    assert response.status == 400
    assert "`audio`" in body["error"] and "`audio_url`" in body["error"]


async def test_an_audio_url_on_a_private_address_is_refused_unless_allowed(
    start_gateway: StartGateway, audio_site: str
) -> None:
    gateway = await start_gateway(allow_private_targets=False)
    async with JetscribeClient(gateway.url) as client:
        with pytest.raises(ApiError) as refused:
            await client.submit_url(f"{audio_site}/en1.wav")

    assert refused.value.status == 422
    assert "audio_url" in refused.value.message
