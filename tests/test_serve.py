"""`jetscribe serve` as a user runs it: one command, a healthy service, a job end to end, a clean Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from client import JetscribeClient
from jetscribe.embedded import EmbeddedNats
from tests.gateway.conftest import AUDIO, TEXTS
from tests.serve import (
    READY_TIMEOUT_S,
    STOP_TIMEOUT_S,
    Service,
    ctrl_c,
    embedded_pid,
    shut_down,
    start_service,
    wait_healthy,
)


async def test_serve_becomes_healthy_with_one_worker_and_the_model_imported(serving: Service, tmp_path: Path) -> None:
    body = await wait_healthy(serving)
    assert [w["model"] for w in body["workers"]] == ["tiny.en"]
    assert (tmp_path / "models" / "ggml-tiny.en.bin").is_file()
    assert re.search(r"embedded NATS at nats://127\.0\.0\.1:\d+", serving.text())


async def test_serve_transcribes_a_job_end_to_end(serving: Service) -> None:
    async with JetscribeClient(serving.url) as client:
        job_id = await client.submit(AUDIO / "en1.mp3", language="en")
        job = await client.wait(job_id)
        srt = await client.transcript(job_id, "srt")
    assert job.status == "done", job.error
    text = " ".join(s.text for s in job.segments).lower()
    assert "children" in text and "garden" in text, (text, TEXTS["en1"])
    assert " --> " in srt


async def test_ctrl_c_stops_everything_cleanly(serving: Service) -> None:
    pid = embedded_pid(serving)
    assert pid is not None
    assert ctrl_c(serving) == 0
    text = serving.text()
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


async def test_a_killed_worker_is_restarted_while_the_gateway_keeps_serving(serving: Service) -> None:
    [first] = await worker_pids(serving.url)
    assert first != serving.process.pid, "the worker runs in a process of its own"

    os.kill(first, signal.SIGKILL)
    async with aiohttp.ClientSession() as session, session.get(f"{serving.url}/livez") as response:
        assert response.status == 200
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    while (pids := await worker_pids(serving.url)) in ([], [first]):
        assert asyncio.get_running_loop().time() < deadline, serving.text()[-3000:]
        await asyncio.sleep(0.5)

    assert serving.process.poll() is None
    assert pids != [first] and "died (status -9); starting another" in serving.text()
    async with JetscribeClient(serving.url) as client:
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
