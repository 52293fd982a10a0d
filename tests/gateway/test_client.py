"""client.JetscribeClient against a real gateway (no worker: jobs stay queued)."""

from __future__ import annotations

import pytest
from nats.js import JetStreamContext

from client import ApiError, JetscribeClient
from gateway.main import GatewayServer
from schemas import DecodeOptions, names
from schemas.codec import decode_job_message
from tests.gateway.conftest import AUDIO


async def test_a_submitted_job_can_be_read_back_and_cancelled(gateway: GatewayServer) -> None:
    async with JetscribeClient(gateway.url) as client:
        job_id = await client.submit(AUDIO / "en1.wav", language="en")
        queued = await client.get(job_id)
        await client.cancel(job_id)
        cancelled = await client.wait(job_id)

    assert queued.status == "queued" and queued.language == "en"
    assert cancelled.status == "cancelled"


async def test_decoding_options_reach_the_job_message(gateway: GatewayServer, js: JetStreamContext) -> None:
    options = DecodeOptions(beam_size=2, vad=False, languages=("en", "de"), vad_threshold=0.3, initial_prompt="Anna")
    async with JetscribeClient(gateway.url) as client:
        await client.submit(AUDIO / "en1.wav", options=options, model="base")

    msg = await js.get_last_msg(names.JOBS_STREAM, names.model_jobs_subject("base"))
    assert decode_job_message(msg.data).options == options


async def test_speaker_options_reach_the_job_message(gateway: GatewayServer, js: JetStreamContext) -> None:
    options = DecodeOptions(diarize=True, min_speakers=2, max_speakers=4)
    async with JetscribeClient(gateway.url) as client:
        await client.submit(AUDIO / "en1.wav", options=options)

    msg = await js.get_last_msg(names.JOBS_STREAM, names.model_jobs_subject("tiny.en"))
    assert decode_job_message(msg.data).options == options


async def test_bytes_and_an_idempotency_key_submit_one_job(gateway: GatewayServer) -> None:
    audio = (AUDIO / "en1.wav").read_bytes()
    async with JetscribeClient(gateway.url) as client:
        first = await client.submit(audio, idempotency_key="retry-1")
        second = await client.submit(audio, idempotency_key="retry-1")

    assert first == second


async def test_an_error_answer_raises_api_error_with_the_gateways_message(gateway: GatewayServer) -> None:
    async with JetscribeClient(gateway.url) as client:
        with pytest.raises(ApiError) as caught:
            await client.get("no-such-job")

    assert caught.value.status == 404
    assert "no-such-job" in caught.value.message


async def test_the_client_must_be_opened_before_use(gateway: GatewayServer) -> None:
    client = JetscribeClient(gateway.url)
    with pytest.raises(RuntimeError, match="async with"):
        await client.get("anything")
