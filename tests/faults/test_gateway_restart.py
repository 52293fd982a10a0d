"""The gateway SIGKILLed and restarted while jobs run and webhooks wait out a failing receiver: nothing is lost."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from aiohttp import web

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from tests.faults.conftest import wait_until_terminal
from tests.faults.processes import GatewayProcess, gateway_env
from tests.gateway.conftest import audio_form
from tests.worker.jobs import AUDIO
from tests.worker.process import WorkerProcess, worker_env

pytestmark = pytest.mark.slow

JOBS: Final = 4
FAILING_FIRST: Final = 3


class FlakyReceiver:
    """A webhook receiver that answers 500 to its first `failing` requests, then 200."""

    def __init__(self, failing: int) -> None:
        self.failing = failing
        self.statuses: list[tuple[str, int]] = []
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        job_id = json.loads(await request.read())["id"]
        status = 500 if len(self.statuses) < self.failing else 200
        self.statuses.append((job_id, status))
        self.changed.set()
        return web.Response(status=status)

    def accepted(self) -> Counter[str]:
        return Counter(job_id for job_id, status in self.statuses if status == 200)

    async def wait(self, done: bool | None = None, *, requests: int = 0, accepted: set[str] | None = None) -> None:
        while len(self.statuses) < requests or (accepted is not None and not accepted <= set(self.accepted())):
            self.changed.clear()
            await self.changed.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[FlakyReceiver, str]]:
    flaky = FlakyReceiver(FAILING_FIRST)
    app = web.Application()
    app.router.add_post("/hook", flaky.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield flaky, f"http://{host}:{port}/hook"
    await runner.cleanup()


async def webhooks_recorded(store: JobStore, job_ids: list[str]) -> None:
    """Return once every job's record says its webhook was delivered."""
    for _ in range(300):
        states = [(await store.require(j)).record.webhook for j in job_ids]
        if all(state is not None and state.delivered_at is not None for state in states):
            return
        await asyncio.sleep(0.1)


async def test_jobs_and_webhooks_survive_a_killed_and_restarted_gateway(
    settings: Settings,
    topology: Topology,
    job_store: JobStore,
    receiver: tuple[FlakyReceiver, str],
    tmp_path: Path,
) -> None:
    flaky, hook_url = receiver
    env = worker_env(settings)
    gateway_environment = gateway_env(env, JETSCRIBE_WEBHOOK_RETRY_SCHEDULE_S="1,1,1,1,1")
    async with (
        WorkerProcess(env, topology, tmp_path / "worker.log"),
        GatewayProcess(gateway_environment, tmp_path / "gateway.log") as gateway,
        aiohttp.ClientSession(base_url=gateway.url) as http,
    ):
        job_ids = []
        for i in range(JOBS):
            form = audio_form(AUDIO / f"en{i + 1}.wav", webhook_url=hook_url)
            async with http.post("/jobs", data=form) as response:
                assert response.status == 202, await response.text()
                job_ids.append((await response.json())["job_id"])
        await asyncio.wait_for(flaky.wait(requests=1), 90)
        still_running = [j for j in job_ids if not (await job_store.require(j)).record.is_terminal]

        await gateway.restart()

        ended = await wait_until_terminal(job_store, job_ids, within_s=120)
        await asyncio.wait_for(flaky.wait(accepted=set(job_ids)), 90)
        # The receiver's 200 comes before the gateway records the delivery: the gateway must stay up for that.
        await webhooks_recorded(job_store, job_ids)

    assert still_running, "the gateway was killed only after every job had finished"
    assert {r.status for r in ended.values()} == {"done"}
    assert flaky.accepted() == Counter(job_ids)
    delivered = [(await job_store.require(j)).record.webhook for j in job_ids]
    assert all(state is not None and state.delivered_at is not None for state in delivered)
    assert sum(status == 500 for _, status in flaky.statuses) == FAILING_FIRST
