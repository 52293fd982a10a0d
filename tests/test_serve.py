"""`jetscribe serve` as a user runs it: one command, a healthy service, a job end to end, a clean Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from client import JetscribeClient
from jetscribe.embedded import EmbeddedNats
from tests.gateway.conftest import AUDIO, TEXTS
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


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Service]:
    """`jetscribe serve` with nothing configured but a port, a data directory and the small model's name."""
    service = start_service(tmp_path, JETSCRIBE_MODELS_DIR=str(tmp_path / "models"))
    yield service
    shut_down(service)


@pytest.fixture
async def healthy(served: Service) -> AsyncIterator[Service]:
    await wait_healthy(served)
    yield served


async def test_serve_becomes_healthy_with_one_worker_and_the_model_imported(healthy: Service, tmp_path: Path) -> None:
    body = await wait_healthy(healthy)
    assert [w["model"] for w in body["workers"]] == ["tiny.en"]
    assert (tmp_path / "models" / "ggml-tiny.en.bin").is_file()
    assert re.search(r"embedded NATS at nats://127\.0\.0\.1:\d+", healthy.text())


async def test_serve_transcribes_a_job_end_to_end(healthy: Service) -> None:
    async with JetscribeClient(healthy.url) as client:
        job_id = await client.submit(AUDIO / "en1.mp3", language="en")
        job = await client.wait(job_id)
        srt = await client.transcript(job_id, "srt")
    assert job.status == "done", job.error
    text = " ".join(s.text for s in job.segments).lower()
    assert "children" in text and "garden" in text, (text, TEXTS["en1"])
    assert " --> " in srt


async def test_ctrl_c_stops_everything_cleanly(healthy: Service) -> None:
    pid = embedded_pid(healthy)
    assert pid is not None
    assert ctrl_c(healthy) == 0
    text = healthy.text()
    assert "Traceback" not in text
    assert "NATS error" not in text, "the NATS server stopped before the components using it"
    assert text.rstrip().endswith("stopped")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_serve_uses_a_configured_nats_server_instead_of_embedding_one(
    tmp_path: Path, nats_server: EmbeddedNats, tiny_model: Path
) -> None:
    service = start_service(tmp_path, JETSCRIBE_NATS_URL=nats_server.url, WHISPER_MODEL_PATH=str(tiny_model))
    try:
        await wait_healthy(service)
        assert ctrl_c(service) == 0
    finally:
        shut_down(service)
    assert f"using NATS at {nats_server.url}" in service.text()
    assert "embedded NATS" not in service.text()


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, dead but not yet reaped by whoever adopted it, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.rsplit(") ", 1)[-1].startswith("Z")


async def gone(pid: int, within_s: float = 30.0) -> bool:
    """Whether the process `pid` has ended within `within_s`."""
    deadline = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < deadline:
        if not is_running(pid):
            return True
        await asyncio.sleep(0.1)
    return False


async def worker_pids(url: str) -> list[int]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/health") as response:
        return [w["pid"] for w in (await response.json())["workers"]]


async def test_a_killed_worker_is_restarted_while_the_gateway_keeps_serving(healthy: Service) -> None:
    [first] = await worker_pids(healthy.url)
    assert first != healthy.process.pid, "the worker runs in a process of its own"

    os.kill(first, signal.SIGKILL)
    async with aiohttp.ClientSession() as session, session.get(f"{healthy.url}/livez") as response:
        assert response.status == 200
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    while (pids := await worker_pids(healthy.url)) in ([], [first]):
        assert asyncio.get_running_loop().time() < deadline, healthy.text()[-3000:]
        await asyncio.sleep(0.5)

    assert healthy.process.poll() is None
    assert pids != [first] and "died (status -9); starting another" in healthy.text()
    async with JetscribeClient(healthy.url) as client:
        job = await client.wait(await client.submit(AUDIO / "en1.wav", language="en"))
    assert job.status == "done", job.error


async def test_serve_killed_outright_leaves_no_nats_server_and_starts_again(tmp_path: Path) -> None:
    first = start_service(tmp_path, JETSCRIBE_MODELS_DIR=str(tmp_path / "models"))
    try:
        await wait_healthy(first)
        nats_pid = embedded_pid(first)
        [worker_pid] = await worker_pids(first.url)
        assert nats_pid is not None
        first.process.kill()
        first.process.wait()
        assert await gone(nats_pid), "the embedded nats-server outlived its owner"
        assert await gone(worker_pid), "the worker outlived its owner"
    finally:
        shut_down(first)

    second = start_service(tmp_path, JETSCRIBE_MODELS_DIR=str(tmp_path / "models"))
    try:
        await wait_healthy(second)
        async with JetscribeClient(second.url) as client:
            job = await client.wait(await client.submit(AUDIO / "en2.wav", language="en"))
        assert job.status == "done", job.error
        assert ctrl_c(second) == 0
    finally:
        shut_down(second)


async def test_serve_refuses_a_store_another_live_process_serves(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path / "data" / "nats"):
        refused = start_service(tmp_path, JETSCRIBE_MODELS_DIR=str(tmp_path / "models"))
        code = await asyncio.to_thread(refused.process.wait, STOP_TIMEOUT_S)

    assert code == 1
    assert f"another process (pid {os.getpid()}) runs an embedded nats-server on" in refused.text()
