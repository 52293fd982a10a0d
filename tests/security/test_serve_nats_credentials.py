"""`jetscribe serve`'s embedded nats-server: loopback only, generated credentials kept owner-only under DATA_DIR.

Real processes: `jetscribe serve` (its nats-server, gateway and worker child) and nats-py clients on loopback.
"""

from __future__ import annotations

import asyncio
import re
import stat
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from client import JetscribeClient
from jetscribe.nats_credentials import load_or_create
from tests.gateway.conftest import AUDIO
from tests.serve import Service, ctrl_c, embedded_pid, shut_down, start_service, wait_healthy


def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def credentials_file(tmp_path: Path) -> Path:
    return data_dir(tmp_path) / "nats-credentials.env"


def nats_url(service: Service) -> str:
    match = re.search(r"embedded NATS at (nats://\S+)", service.text())
    assert match, service.text()[-3000:]
    return match.group(1)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def refusal(url: str, **credentials: str) -> str:
    """The error a nats-py client gets connecting to `url` with `credentials` (the test fails if it connects)."""
    client = Client()
    try:
        with pytest.raises(nats.errors.Error) as refused:
            await client.connect(url, allow_reconnect=False, connect_timeout=5, **credentials)  # type: ignore[arg-type]
    finally:
        await client.close()  # nats-py leaves a refused connection's socket open
    return str(refused.value)


async def test_a_nats_client_without_credentials_is_refused_by_the_embedded_server(serving: Service) -> None:
    assert "authorization violation" in (await refusal(nats_url(serving))).lower()


async def test_a_nats_client_with_the_generated_credentials_reads_the_job_stream(
    serving: Service, tmp_path: Path
) -> None:
    credentials = await asyncio.to_thread(load_or_create, credentials_file(tmp_path))
    nc = await nats.connect(
        nats_url(serving), user=credentials.user, password=credentials.password, allow_reconnect=False
    )
    try:
        info = await nc.jetstream().stream_info("JETSCRIBE_JOBS")
    finally:
        await nc.close()
    assert info.config.name == "JETSCRIBE_JOBS"


async def test_a_wrong_password_is_refused(serving: Service, tmp_path: Path) -> None:
    credentials = await asyncio.to_thread(load_or_create, credentials_file(tmp_path))
    wrong = await refusal(nats_url(serving), user=credentials.user, password="not-" + credentials.password)
    assert "authorization violation" in wrong.lower()


async def test_the_credentials_file_and_the_server_config_are_owner_only(serving: Service, tmp_path: Path) -> None:
    assert mode(credentials_file(tmp_path)) == 0o600
    assert mode(data_dir(tmp_path) / "nats" / "nats-server.conf") == 0o600
    assert mode(data_dir(tmp_path) / "nats") == 0o700


async def test_the_server_listens_on_loopback_only(serving: Service, tmp_path: Path) -> None:
    server_log = (data_dir(tmp_path) / "nats" / "nats-server.log").read_text()
    listening = re.findall(r"Listening for client connections on (\S+):\d+", server_log)
    assert listening == ["127.0.0.1"], server_log


async def test_serve_says_how_a_native_producer_connects_without_logging_the_secret(
    serving: Service, tmp_path: Path
) -> None:
    credentials = await asyncio.to_thread(load_or_create, credentials_file(tmp_path))
    text = serving.text()
    assert f". {credentials_file(tmp_path)}; set +a; nats --server {nats_url(serving)}" in text
    assert credentials.password not in text
    assert credentials.password not in (data_dir(tmp_path) / "nats" / "nats-server.log").read_text()


async def test_no_process_of_serve_carries_the_password_on_its_command_line(serving: Service, tmp_path: Path) -> None:
    password = (await asyncio.to_thread(load_or_create, credentials_file(tmp_path))).password.encode()
    async with JetscribeClient(serving.url) as client:
        health = await client.health()
    pids = [serving.process.pid, embedded_pid(serving), *(w.pid for w in health.workers)]
    assert len(pids) == 3 and None not in pids
    for pid in pids:
        assert password not in await asyncio.to_thread(Path(f"/proc/{pid}/cmdline").read_bytes)


async def test_the_credentials_survive_a_restart_and_the_service_works_with_them(tmp_path: Path) -> None:
    first = start_service(tmp_path, JETSCRIBE_MODELS_DIR=str(tmp_path / "models"))
    try:
        await wait_healthy(first)
        before = credentials_file(tmp_path).read_text()
        assert ctrl_c(first) == 0
    finally:
        shut_down(first)

    second = start_service(tmp_path, JETSCRIBE_MODELS_DIR=str(tmp_path / "models"))
    try:
        await wait_healthy(second)
        assert credentials_file(tmp_path).read_text() == before
        credentials = await asyncio.to_thread(load_or_create, credentials_file(tmp_path))
        nc = await nats.connect(
            nats_url(second), user=credentials.user, password=credentials.password, allow_reconnect=False
        )
        await nc.close()
        async with JetscribeClient(second.url) as client:
            job = await client.wait(await client.submit(AUDIO / "en1.wav", language="en"))
        assert job.status == "done", job.error
    finally:
        shut_down(second)
