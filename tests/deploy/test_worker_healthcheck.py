"""The worker images' health check (deploy/worker_healthcheck.py) against a real nats-server."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from types import ModuleType

import msgspec
import pytest

from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.topology import ensure_topology
from schemas.workers import DeviceInfo, WorkerHeartbeat
from tests.deploy.conftest import CREDENTIALS
from tests.deploy.nats_process import ConfiguredNats
from tests.deploy.repo import DEPLOY
from tests.ports import free_port

SCRIPT = DEPLOY / "worker_healthcheck.py"


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("worker_healthcheck", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker_settings(url: str) -> Settings:
    return Settings(nats_url=url, nats_user="worker", nats_password=CREDENTIALS["worker"])


async def publish_heartbeat(settings: Settings, host: str, worker_id: str) -> None:
    assert settings.nats_url is not None
    nc = await connect(settings, settings.nats_url, name="heartbeat-test")
    try:
        topology = await ensure_topology(nc.jetstream(), settings)
        now = datetime.now(UTC)
        heartbeat = WorkerHeartbeat(
            worker_id=worker_id,
            host=host,
            pid=os.getpid(),
            model="tiny.en",
            device=DeviceInfo(kind="cpu", name="test CPU"),
            slots=1,
            current_jobs=[],
            jobs_done=0,
            started_at=now,
            uptime_s=1.0,
            sent_at=now,
        )
        await topology.workers.put(worker_id, msgspec.json.encode(heartbeat))
    finally:
        await nc.close()


async def test_worker_heartbeating_on_this_host_is_healthy(single_node: ConfiguredNats) -> None:
    settings = worker_settings(single_node.url)
    await publish_heartbeat(settings, socket.gethostname(), "w-1")
    status, reason = await load_check().check(settings, socket.gethostname())
    assert status == 0 and "w-1" in reason


async def test_no_heartbeat_from_this_host_is_unhealthy(single_node: ConfiguredNats) -> None:
    settings = worker_settings(single_node.url)
    await publish_heartbeat(settings, "another-host", "w-2")
    status, reason = await load_check().check(settings, socket.gethostname())
    assert status == 1 and socket.gethostname() in reason


async def test_no_workers_bucket_yet_is_unhealthy(single_node: ConfiguredNats) -> None:
    status, _ = await load_check().check(worker_settings(single_node.url), socket.gethostname())
    assert status == 1


async def test_unreachable_nats_does_not_blame_the_worker() -> None:
    settings = worker_settings(f"nats://127.0.0.1:{free_port()}")
    status, reason = await load_check().check(settings, socket.gethostname())
    assert status == 0 and "unreachable" in reason


@pytest.mark.parametrize(("host", "expected"), [("this", 0), ("other", 1)])
def test_script_exit_status_is_the_container_health(single_node: ConfiguredNats, host: str, expected: int) -> None:
    settings = worker_settings(single_node.url)
    hostname = socket.gethostname() if host == "this" else "another-host"
    asyncio.run(publish_heartbeat(settings, hostname, "w-3"))
    env = {
        **os.environ,
        "JETSCRIBE_NATS_URL": single_node.url,
        "JETSCRIBE_NATS_USER": "worker",
        "JETSCRIBE_NATS_PASSWORD": CREDENTIALS["worker"],
    }
    result = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == expected, result.stdout + result.stderr
