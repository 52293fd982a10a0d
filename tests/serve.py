"""`jetscribe serve` run as a user runs it, in a process group of its own, for the tests that need the whole service.

`start_service` starts it (tiny.en on the CPU, loopback, a fresh data directory), `wait_healthy` waits for its
`/health`, `shut_down` stops it and the embedded nats-server it started whatever state it is in; the `serving`
fixture (tests/conftest.py) is a healthy one with nothing else configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tests.ports import free_port

READY_TIMEOUT_S = 150.0
STOP_TIMEOUT_S = 60.0


class Service:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, url: str) -> None:
        self.process = process
        self.log = log
        self.url = url

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def start_service(tmp_path: Path, **env: str) -> Service:
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in ("WHISPER_MODEL_PATH", "JETSCRIBE_NATS_URL")}
    environ = {
        **inherited,
        "PORT": str(port),
        "DATA_DIR": str(tmp_path / "data"),
        "WHISPER_MODEL": "tiny.en",
        "JETSCRIBE_HOST": "127.0.0.1",
        "JETSCRIBE_USE_GPU": "false",
        "JETSCRIBE_THREADS": "2",
        **env,
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jetscribe"), "serve"],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group, as a shell gives a foreground command: Ctrl-C signals the whole group.
            start_new_session=True,
        )
    return Service(process, log, f"http://127.0.0.1:{port}")


async def wait_healthy(service: Service) -> dict:
    async with aiohttp.ClientSession() as session:
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
        while asyncio.get_running_loop().time() < deadline:
            assert service.process.poll() is None, f"jetscribe serve exited:\n{service.text()[-3000:]}"
            try:
                async with session.get(f"{service.url}/health") as response:
                    if response.status == 200:
                        return await response.json()
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError(f"jetscribe serve was not healthy within {READY_TIMEOUT_S:.0f} s:\n{service.text()[-3000:]}")


def ctrl_c(service: Service) -> int:
    """SIGINT to the service's whole process group, as a terminal's Ctrl-C does; returns the exit status."""
    os.killpg(service.process.pid, signal.SIGINT)
    try:
        return service.process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        tail = service.text()[-3000:]
        raise AssertionError(f"jetscribe serve ignored Ctrl-C for {STOP_TIMEOUT_S:.0f} s:\n{tail}") from exc
    finally:
        shut_down(service)


def embedded_pid(service: Service) -> int | None:
    match = re.search(r"embedded NATS at \S+ \(pid (\d+)", service.text())
    return int(match.group(1)) if match else None


def shut_down(service: Service) -> None:
    """Stop what the test started, by process id: gracefully, then by force."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGINT)
        try:
            service.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
    pid = embedded_pid(service)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def healthy_service(tmp_path: Path, **env: str) -> AsyncIterator[Service]:
    """A `jetscribe serve` that answered `/health`, importing its models into `tmp_path/models`; stopped on exit."""
    service = start_service(tmp_path, JETSCRIBE_MODELS_DIR=str(tmp_path / "models"), **env)
    try:
        await wait_healthy(service)
        yield service
    finally:
        shut_down(service)
