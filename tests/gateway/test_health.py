"""GET /health, /livez, /readyz and /metrics, with and without workers and NATS."""

from __future__ import annotations

import asyncio

import aiohttp
from nats.aio.client import Client

from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from tests.gateway.conftest import audio_form
from worker.service import Worker


async def test_health_is_503_without_a_live_worker(http: aiohttp.ClientSession) -> None:
    async with http.get("/health") as response:
        body = await response.json()
    assert response.status == 503
    assert body["status"] == "degraded"
    assert body["nats_connected"] is True
    assert body["workers"] == []
    assert any("no worker is alive" in p for p in body["problems"])


async def test_health_counts_waiting_jobs_as_queue_depth(http: aiohttp.ClientSession) -> None:
    for _ in range(3):
        async with http.post("/jobs", data=audio_form()) as response:
            assert response.status == 202
    async with http.get("/health") as response:
        body = await response.json()
    assert (body["queue"]["pending"], body["queue"]["in_flight"]) == (3, 0)
    assert body["queue"]["oldest_waiting_s"] >= 0


async def test_liveness_and_readiness_are_ok_while_connected(http: aiohttp.ClientSession) -> None:
    async with http.get("/livez") as live, http.get("/readyz") as ready:
        assert live.status == 200
        assert ready.status == 200


async def test_health_and_readiness_are_503_while_nats_is_down(
    http: aiohttp.ClientSession, nats_server: EmbeddedNats
) -> None:
    await asyncio.to_thread(nats_server.stop)
    for _ in range(200):
        async with http.get("/health") as response:
            body = await response.json()
        if not body["nats_connected"]:
            break
        await asyncio.sleep(0.05)
    assert response.status == 503
    assert "not connected to NATS" in body["problems"]
    async with http.get("/readyz") as ready, http.get("/livez") as live:
        assert ready.status == 503
        assert "NATS" in (await ready.json())["error"]
        assert live.status == 200
    await asyncio.to_thread(nats_server.start)
    for _ in range(400):
        async with http.get("/readyz") as ready:
            if ready.status == 200:
                break
        await asyncio.sleep(0.05)
    assert ready.status == 200


async def test_metrics_are_prometheus_text(http: aiohttp.ClientSession) -> None:
    async with http.post("/jobs", data=audio_form()) as response:
        assert response.status == 202
    async with http.get("/metrics") as response:
        text = await response.text()
    assert response.status == 200
    assert "jetscribe_jobs_submitted_total 1.0" in text
    assert "jetscribe_queue_pending 1.0" in text
    assert 'jetscribe_http_requests_total{method="POST",route="/jobs",status="202"} 1.0' in text


async def test_health_follows_a_worker_starting_and_stopping(
    http: aiohttp.ClientSession, settings: Settings, nc: Client
) -> None:
    async with Worker(settings, nc) as worker:
        async with http.get("/health") as response:
            running = await response.json()
    async with http.get("/health") as response:
        stopped = await response.json()
    assert [w["worker_id"] for w in running["workers"]] == [worker.worker_id]
    assert running["status"] == "ok"
    assert response.status == 503
    assert stopped["workers"] == []
