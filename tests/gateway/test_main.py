"""`jetscribe gateway` as a process: serves until SIGTERM, refuses to start without a NATS URL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from jetscribe.embedded import EmbeddedNats
from tests.ports import free_port

EXIT_TIMEOUT_S = 60.0


def jetscribe(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "jetscribe"), *args],
            env={k: v for k, v in os.environ.items() if not k.startswith("JETSCRIBE_")} | env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def test_gateway_command_serves_until_sigterm(tmp_path: Path, nats_server: EmbeddedNats) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    env = {"JETSCRIBE_NATS_URL": nats_server.url, "PORT": str(port), "JETSCRIBE_HOST": "127.0.0.1"}
    process = jetscribe("gateway", env=env, log=log)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                assert process.poll() is None, log.read_text()
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, EXIT_TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text()


async def test_gateway_command_without_a_nats_url_says_what_to_set(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    process = jetscribe("gateway", env={"PORT": str(free_port())}, log=log)
    assert await asyncio.to_thread(process.wait, EXIT_TIMEOUT_S) == 1
    assert "JETSCRIBE_NATS_URL" in log.read_text()
