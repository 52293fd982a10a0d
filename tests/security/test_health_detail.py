"""`/health` with API keys: anonymous callers learn only whether the service is up; the detail needs a key."""

from __future__ import annotations

import os
import socket

import aiohttp
import pytest

from tests.gateway.conftest import StartGateway
from worker.service import Worker

KEYS = ("operator-key-0123456789",)
BEARER = {"Authorization": f"Bearer {KEYS[0]}"}


@pytest.fixture
async def guarded(start_gateway: StartGateway) -> aiohttp.ClientSession:
    _, session = await start_gateway(api_keys=KEYS)
    return session


async def test_anonymous_health_is_only_the_status_and_its_code(guarded: aiohttp.ClientSession) -> None:
    async with guarded.get("/health") as response:
        body = await response.json()

    assert (response.status, body) == (503, {"status": "degraded"})


async def test_anonymous_health_hides_hosts_pids_and_job_ids_of_a_running_worker(
    guarded: aiohttp.ClientSession, worker: Worker
) -> None:
    async with guarded.get("/health") as response:
        text = await response.text()

    assert (response.status, text) == (200, '{"status":"ok"}')
    assert socket.gethostname() not in text
    assert str(os.getpid()) not in text


async def test_health_with_a_valid_key_shows_the_workers_and_the_queue(
    guarded: aiohttp.ClientSession, worker: Worker
) -> None:
    async with guarded.get("/health", headers=BEARER) as response:
        body = await response.json()

    assert response.status == 200
    assert [(w["worker_id"], w["host"], w["pid"]) for w in body["workers"]] == [
        (worker.worker_id, socket.gethostname(), os.getpid())
    ]
    assert body["queue"] == {"pending": 0, "in_flight": 0, "oldest_waiting_s": None}
    assert body["nats_connected"] is True


async def test_health_with_a_key_that_is_not_valid_is_401(guarded: aiohttp.ClientSession) -> None:
    async with guarded.get("/health", headers={"Authorization": "Bearer not-a-key"}) as response:
        body = await response.json()

    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert body["error"].startswith("the API key is not valid for this service")


async def test_without_keys_the_health_detail_stays_public(http: aiohttp.ClientSession) -> None:
    async with http.get("/health") as response:
        body = await response.json()

    assert set(body) == {"status", "nats_connected", "queue", "workers", "models", "diarization", "problems"}
    assert body["problems"] == ["no worker is alive (no heartbeat in the workers bucket)"]


async def test_probes_stay_open_with_keys(guarded: aiohttp.ClientSession) -> None:
    async with guarded.get("/livez") as live, guarded.get("/readyz") as ready:
        assert (live.status, ready.status) == (200, 200)
