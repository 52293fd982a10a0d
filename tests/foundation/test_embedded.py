"""The embedded nats-server: JetStream data survives a restart; start-up failures are clear errors."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats, nats_server_binary
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


def test_a_second_owner_of_a_store_is_refused_naming_the_first(tmp_path: Path) -> None:
    first = EmbeddedNats(tmp_path / "nats")
    first.start()
    try:
        with pytest.raises(NatsUnavailableError, match=rf"another process \(pid {os.getpid()}\) runs an embedded"):
            EmbeddedNats(tmp_path / "nats").start()
    finally:
        first.stop()


async def test_a_server_left_running_on_the_store_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    earlier = EmbeddedNats(tmp_path / "nats")
    await asyncio.to_thread(earlier.start)
    port = earlier.port
    await put_value(earlier, "job-1", b"queued")
    await asyncio.to_thread(earlier.stop)
    # A server on the same configuration whose owner is gone (as after a crash where no death signal reached it).
    binary = await asyncio.to_thread(nats_server_binary)
    leftover = await asyncio.create_subprocess_exec(
        binary, "-c", str(earlier.config_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await asyncio.wait_for(pid_file_names(earlier.pid_path, leftover.pid), 15)
        async with EmbeddedNats(tmp_path / "nats", port=port) as later:
            assert await asyncio.wait_for(leftover.wait(), 15) is not None
            assert later.pid != leftover.pid
            assert await get_value(later, "job-1") == b"queued"
    finally:
        if leftover.returncode is None:
            leftover.kill()
            await leftover.wait()


async def pid_file_names(path: Path, pid: int) -> None:
    """Return once nats-server has written `pid` to its pid file (it is up)."""
    while True:
        written = await asyncio.to_thread(lambda: path.read_text() if path.exists() else "")
        if written.strip() == str(pid):
            return
        await asyncio.sleep(0.05)


async def test_the_server_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OWNER_SCRIPT, str(tmp_path / "nats"), stdout=subprocess.PIPE
    )
    assert owner.stdout is not None
    server_pid = int(await asyncio.wait_for(owner.stdout.readline(), 30))
    owner.kill()
    await owner.wait()

    for _ in range(200):
        if not running(server_pid):
            break
        await asyncio.sleep(0.05)
    assert not running(server_pid)


OWNER_SCRIPT = """
import sys, time
from pathlib import Path
from jetscribe.embedded import EmbeddedNats, nats_server_binary
server = EmbeddedNats(Path(sys.argv[1]))
server.start()
print(server.pid, flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether `pid` is alive and not a zombie left for its adopter to reap."""
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1].startswith("Z")
    except OSError:
        return False
