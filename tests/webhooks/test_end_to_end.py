"""Through the real gateway and worker: a submitted job's webhook arrives signed, and its state shows in the API."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import msgspec
import pytest
from nats.aio.client import Client
from standardwebhooks import Webhook

from gateway.main import GatewayServer
from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas.codec import decode_job
from tests.webhooks.conftest import ReceiverFactory, finished, webhook_state
from worker.service import Worker

AUDIO = Path(__file__).parents[1] / "fixtures" / "audio"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def form(webhook_url: str) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("language", "en")
    data.add_field("webhook_url", webhook_url)
    data.add_field("audio", (AUDIO / "en1.wav").read_bytes(), filename="en1.wav")
    return data


async def test_transcribed_job_is_delivered_signed_and_its_webhook_state_is_in_the_job_json(
    settings: Settings,
    nc: Client,
    topology: Topology,
    job_store: JobStore,
    worker: Worker,
    receiver_factory: ReceiverFactory,
) -> None:
    receiver = await receiver_factory()
    signed = msgspec.structs.replace(settings, webhook_secret=SECRET)
    async with GatewayServer(signed, nc, topology) as gateway, aiohttp.ClientSession(base_url=gateway.url) as http:
        async with http.post("/jobs", data=form(receiver.url)) as response:
            assert response.status == 202, await response.text()
            job_id = (await response.json())["job_id"]
        [request] = await receiver.wait_for(1)
        await webhook_state(job_store, job_id, finished)
        async with http.get(f"/jobs/{job_id}") as response:
            shown = await response.json()

    Webhook(SECRET).verify(request.body, dict(request.headers))
    job = decode_job(request.body)
    assert (job.id, job.status) == (job_id, "done")
    expected = json.loads((AUDIO / "texts.json").read_text())["en1"].lower().rstrip(".")
    assert expected in " ".join(s.text for s in job.segments).lower()
    assert shown["webhook"]["url"] == receiver.url
    assert (shown["webhook"]["attempts"], shown["webhook"]["last_status"]) == (1, 200)
    assert shown["webhook"]["delivered_at"] is not None


@pytest.mark.xfail(
    strict=False,
    reason="intermittent (2 of 3 full-suite runs on 2026-11-30, never alone): the cancelled event's webhook does not "
    "arrive within the test's time; under investigation",
)
@pytest.mark.timeout(60)
async def test_job_cancelled_while_queued_is_delivered_as_cancelled(
    settings: Settings, nc: Client, topology: Topology, receiver_factory: ReceiverFactory
) -> None:
    receiver = await receiver_factory()
    async with GatewayServer(settings, nc, topology) as gateway, aiohttp.ClientSession(base_url=gateway.url) as http:
        async with http.post("/jobs", data=form(receiver.url)) as response:
            job_id = (await response.json())["job_id"]
        async with http.delete(f"/jobs/{job_id}") as response:
            assert response.status == 204, await response.text()
        [request] = await receiver.wait_for(1)

    job = decode_job(request.body)
    assert (job.id, job.status) == (job_id, "cancelled")
    assert request.headers["webhook-id"] == f"{job_id}:cancelled"
