"""The nats-server SIGKILLed mid-run and restarted on the same port and store: nothing accepted is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from gateway.main import GatewayServer
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology, ensure_topology
from tests.faults.conftest import wait_until_running, wait_until_terminal
from tests.gateway.conftest import ServerSentEvent, audio_form, read_events
from tests.worker.jobs import AUDIO, terminal_event_count
from tests.worker.process import WorkerProcess, worker_env

pytestmark = pytest.mark.slow

JOBS: Final = 6
OUTAGE_S: Final = 3.0


async def follow_to_done(session: aiohttp.ClientSession, job_id: str) -> tuple[list[ServerSentEvent], int]:
    """Read the job's event stream to `done`, reconnecting with Last-Event-ID as a browser's EventSource does."""
    events: list[ServerSentEvent] = []
    connections = 0
    while not events or events[-1].event != "done":
        connections += 1
        last_id = next((e.id for e in reversed(events) if e.id), None)
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            async with session.get(f"/jobs/{job_id}/stream", headers=headers) as response:
                if response.status != 200:
                    await asyncio.sleep(0.5)
                    continue
                received, _ = await read_events(response)
                events.extend(received)
        except aiohttp.ClientError:
            await asyncio.sleep(0.5)
    return events, connections


async def test_jobs_and_event_streams_survive_a_killed_and_restarted_nats_server(
    settings: Settings,
    nats_server: EmbeddedNats,
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    tmp_path: Path,
) -> None:
    assert settings.nats_url is not None
    gateway_nc = await connect(settings, settings.nats_url, name="gateway-under-test")
    restarted: EmbeddedNats | None = None
    try:
        gateway_topology = await ensure_topology(gateway_nc.jetstream(), settings)
        async with (
            WorkerProcess(worker_env(settings), topology, tmp_path / "worker.log") as worker,
            GatewayServer(settings, gateway_nc, gateway_topology) as gateway,
            aiohttp.ClientSession(base_url=gateway.url) as http,
        ):
            job_ids = []
            for i in range(JOBS):
                async with http.post("/jobs", data=audio_form(AUDIO / f"en{i % 6 + 1}.wav")) as response:
                    assert response.status == 202, await response.text()
                    job_ids.append((await response.json())["job_id"])
            streamed = asyncio.create_task(follow_to_done(http, job_ids[-1]))
            await wait_until_running(job_store, job_ids, within_s=60)
            assert not (await job_store.require(job_ids[-1])).record.is_terminal

            await asyncio.to_thread(nats_server.kill)
            await asyncio.sleep(OUTAGE_S)
            restarted = EmbeddedNats(nats_server.store_dir, port=nats_server.port)
            await asyncio.to_thread(restarted.start)

            ended = await wait_until_terminal(job_store, job_ids, within_s=150)
            events, connections = await asyncio.wait_for(streamed, 60)
            assert worker.process.poll() is None, worker.log()
            async with http.get("/readyz") as response:
                assert response.status == 200

        assert {r.status for r in ended.values()} == {"done"}, {i: (r.status, r.error) for i, r in ended.items()}
        assert [await terminal_event_count(js, j) for j in job_ids] == [1] * JOBS
        assert events[-1].event == "done" and events[-1].data["job"]["status"] == "done"
        assert events[-1].data["job"]["segments"]
        print(f"SSE client connections: {connections}")
    finally:
        await gateway_nc.close()
        if restarted is not None:
            await asyncio.to_thread(restarted.stop)
