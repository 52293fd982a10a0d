"""The gateway's image health check and Kubernetes probes, run against a real gateway on the shipped NATS config."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import msgspec
import pytest

from gateway.main import GatewayServer
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.topology import ensure_topology
from tests.deploy.conftest import CREDENTIALS
from tests.deploy.dockerfiles import parse_dockerfile
from tests.deploy.manifests import find, services
from tests.deploy.nats_process import ConfiguredNats
from tests.deploy.repo import DEPLOY
from tests.ports import free_port


@pytest.fixture
async def gateway_url(single_node: ConfiguredNats) -> AsyncIterator[str]:
    """A gateway with docker-compose's settings, logged into the shipped NATS config as the gateway user."""
    environment = {k: str(v) for k, v in services()["gateway"]["environment"].items()}
    settings = msgspec.structs.replace(
        Settings.from_env(environment),
        host="127.0.0.1",
        port=0,
        nats_url=single_node.url,
        nats_password=CREDENTIALS["gateway"],
    )
    assert settings.nats_url is not None
    nc = await connect(settings, settings.nats_url, name="gateway-probe-test")
    try:
        topology = await ensure_topology(nc.jetstream(), settings)
        async with GatewayServer(settings, nc, topology) as server:
            yield server.url
    finally:
        await nc.close()


def k8s_probe_paths() -> list[str]:
    (gateway,) = find("Deployment", "jetscribe-gateway")["spec"]["template"]["spec"]["containers"]
    return [gateway[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe", "startupProbe")]


async def test_kubernetes_probes_answer_200_on_a_ready_gateway(gateway_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in k8s_probe_paths():
            async with session.get(gateway_url + path) as response:
                assert response.status == 200, path


async def test_image_health_check_command_passes_against_the_gateway(gateway_url: str) -> None:
    healthcheck = parse_dockerfile(DEPLOY / "gateway.Dockerfile").final.all("HEALTHCHECK")[0]
    command = json.loads(healthcheck.args.split("CMD", 1)[1])
    assert command[0] == "python"
    env = {**os.environ, "PORT": str(urlsplit(gateway_url).port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command[1:], env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


async def test_image_health_check_command_fails_when_the_gateway_does_not_answer() -> None:
    healthcheck = parse_dockerfile(DEPLOY / "gateway.Dockerfile").final.all("HEALTHCHECK")[0]
    command = json.loads(healthcheck.args.split("CMD", 1)[1])
    env = {**os.environ, "PORT": str(free_port())}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command[1:], env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    assert await process.wait() != 0
