"""The shipped NATS configs: accepted by nats-server, and the services' topology works on them as deployed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client

from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import MAX_PAYLOAD_BYTES
from jetscribe.topology import ensure_topology
from schemas import names
from tests.deploy.conftest import CREDENTIALS, PASSWORDS
from tests.deploy.manifests import services, worker_settings
from tests.deploy.nats_process import DEPLOY_NATS, ConfiguredNats, config_test
from tests.ports import free_port


def compose_settings(service: str, url: str) -> Settings:
    """The settings docker-compose gives `service`, pointed at a test server."""
    environment = {k: str(v) for k, v in services()[service]["environment"].items()}
    return msgspec.structs.replace(Settings.from_env(environment), nats_url=url)


async def connect_as(settings: Settings) -> Client:
    assert settings.nats_url is not None
    return await connect(settings, settings.nats_url, name="deploy-test")


@pytest.mark.parametrize("config", ["nats.conf", "cluster.conf"])
def test_config_passes_nats_server_config_test(config: str) -> None:
    result = config_test(DEPLOY_NATS / config, {**PASSWORDS, "NATS_SERVER_NAME": "nats-1"})
    assert result.returncode == 0, result.stderr


def test_config_without_passwords_is_refused_naming_the_variable() -> None:
    result = config_test(DEPLOY_NATS / "nats.conf", {"NATS_WORKER_PASSWORD": "w"})
    assert result.returncode != 0
    assert "NATS_GATEWAY_PASSWORD" in result.stderr


def test_single_node_allows_the_embedded_servers_payload_size(single_node: ConfiguredNats) -> None:
    status, varz = single_node.monitor("/varz")
    assert status == 200 and varz["max_payload"] == MAX_PAYLOAD_BYTES


async def handshake(server: ConfiguredNats, user: str, password: str) -> bytes:
    """Speak the NATS protocol's CONNECT + PING by hand; the server's first reply line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.client_port)
    try:
        await reader.readline()  # INFO
        connect_options = json.dumps({"user": user, "pass": password, "verbose": False, "pedantic": False})
        writer.write(f"CONNECT {connect_options}\r\nPING\r\n".encode())
        await writer.drain()
        return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_service_users_log_in_and_a_wrong_password_is_refused(single_node: ConfiguredNats) -> None:
    for user, password in CREDENTIALS.items():
        assert await handshake(single_node, user, password) == b"PONG\r\n"
    assert b"Authorization Violation" in await handshake(single_node, "worker", "not-the-password")


@pytest.mark.parametrize("service", ["gateway", "worker"])
async def test_each_service_creates_the_topology_with_its_own_user(single_node: ConfiguredNats, service: str) -> None:
    settings = compose_settings(service, single_node.url)
    assert settings.nats_user == service
    nc = await connect_as(msgspec.structs.replace(settings, nats_password=CREDENTIALS[service]))
    try:
        await ensure_topology(nc.jetstream(), settings)
        streams = {info.config.name for info in await nc.jetstream().streams_info()}
    finally:
        await nc.close()
    assert {names.JOBS_STREAM, names.EVENTS_STREAM, names.DEADLETTER_STREAM} <= streams


@contextlib.contextmanager
def three_node_cluster(workdir: Path) -> Iterator[list[ConfiguredNats]]:
    """Three servers running deploy/nats/cluster.conf, routed to each other on loopback."""
    route_ports = [free_port() for _ in range(3)]
    routes = ",".join(f"nats://127.0.0.1:{port}" for port in route_ports)
    nodes = [
        ConfiguredNats(
            "cluster.conf",
            workdir / f"nats-{i + 1}",
            {**PASSWORDS, "NATS_SERVER_NAME": f"nats-{i + 1}"},
            ["--cluster", f"nats://127.0.0.1:{port}", "--routes", routes],
        )
        for i, port in enumerate(route_ports)
    ]
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_healthy()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def test_cluster_config_serves_the_kubernetes_replica_count(tmp_path: Path) -> None:
    with three_node_cluster(tmp_path) as nodes:
        settings = msgspec.structs.replace(
            worker_settings(),
            nats_url=",".join(node.url for node in nodes),
            nats_password=CREDENTIALS["worker"],
        )
        nc = await connect_as(settings)
        try:
            js = nc.jetstream()
            async with asyncio.timeout(60):
                topology = await ensure_topology(js, settings)
                info = await js.stream_info(names.JOBS_STREAM)
                await topology.jobs.put("probe", b"replicated")
                kv_info = await js.stream_info(names.kv_stream(names.JOBS_BUCKET))
        finally:
            await nc.close()
    assert info.config.num_replicas == 3
    assert info.cluster is not None and info.cluster.leader and len(info.cluster.replicas or []) == 2
    assert kv_info.config.num_replicas == 3
