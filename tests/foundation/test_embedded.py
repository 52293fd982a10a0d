"""The embedded nats-server: JetStream data survives a restart; start-up failures are clear errors."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.errors import NatsUnavailableError
from jetscribe.topology import ensure_topology


async def put_value(server: EmbeddedNats, key: str, value: bytes) -> None:
    settings = Settings()
    nc = await connect(settings, server.url, name="tests")
    try:
        topology = await ensure_topology(nc.jetstream(), settings)
        await topology.jobs.put(key, value)
    finally:
        await nc.close()


async def get_value(server: EmbeddedNats, key: str) -> bytes | None:
    settings = Settings()
    nc = await connect(settings, server.url, name="tests")
    try:
        topology = await ensure_topology(nc.jetstream(), settings)
        return (await topology.jobs.get(key)).value
    finally:
        await nc.close()


async def test_data_survives_a_stop_and_start_on_the_same_store_and_port(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path / "nats") as first:
        port = first.port
        await put_value(first, "job-1", b"queued")

    async with EmbeddedNats(tmp_path / "nats", port=port) as second:
        assert second.url == f"nats://127.0.0.1:{port}"
        assert await get_value(second, "job-1") == b"queued"


async def test_data_survives_a_crash(tmp_path: Path) -> None:
    first = EmbeddedNats(tmp_path / "nats")
    await asyncio.to_thread(first.start)
    await put_value(first, "job-1", b"running")
    await asyncio.to_thread(first.kill)

    async with EmbeddedNats(tmp_path / "nats", port=first.port) as second:
        assert await get_value(second, "job-1") == b"running"


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedNats(tmp_path / "nats", port=taken.getsockname()[1])

        with pytest.raises(NatsUnavailableError, match="nats-server exited at start-up") as caught:
            server.start()

    assert "address already in use" in str(caught.value)
    assert server.pid is None


def test_starting_a_running_server_again_is_refused(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        with pytest.raises(NatsUnavailableError, match="already running"):
            server.start()
    finally:
        server.stop()


async def test_a_stopped_server_has_no_url(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path / "nats") as server:
        assert server.pid is not None

    with pytest.raises(NatsUnavailableError, match="not running"):
        _ = server.url
