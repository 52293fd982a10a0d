"""NATS credentials: user/password, token and TLS against a real nats-server that demands them."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.errors import NatsUnavailableError
from jetscribe.jobstore import JobStore
from jetscribe.topology import ensure_topology
from tests.faults.conftest import wait_until_terminal
from tests.faults.processes import GatewayProcess, gateway_env
from tests.gateway.conftest import AUDIO, audio_form
from tests.worker.process import WorkerProcess, jetscribe_command, worker_env

USER = "jetscribe"
PASSWORD = "correct-horse-battery"
TOKEN = "s3cr3t-token-0123456789"


@pytest.fixture
async def secured_nats(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[EmbeddedNats]:
    async with EmbeddedNats(tmp_path / "secured", extra_config=request.param) as server:
        yield server


def with_server(settings: Settings, server: EmbeddedNats, **credentials: object) -> Settings:
    return msgspec.structs.replace(settings, nats_url=server.url, **credentials)


USER_PASSWORD = f'authorization {{ user: "{USER}", password: "{PASSWORD}" }}\n'
TOKEN_ONLY = f'authorization {{ token: "{TOKEN}" }}\n'


@pytest.mark.parametrize("secured_nats", [USER_PASSWORD], indirect=True)
async def test_worker_and_gateway_run_a_job_with_user_and_password(
    settings: Settings, secured_nats: EmbeddedNats, tmp_path: Path
) -> None:
    secured = with_server(settings, secured_nats, nats_user=USER, nats_password=PASSWORD)
    nc = await connect(secured, secured_nats.url, name="credentials-test")
    try:
        topology = await ensure_topology(nc.jetstream(), secured)
        env = worker_env(secured, JETSCRIBE_NATS_USER=USER, JETSCRIBE_NATS_PASSWORD=PASSWORD)
        async with (
            WorkerProcess(env, topology, tmp_path / "worker.log"),
            GatewayProcess(gateway_env(env), tmp_path / "gateway.log") as gateway,
            aiohttp.ClientSession(base_url=gateway.url) as http,
            http.post("/jobs", data=audio_form(AUDIO / "en1.wav")) as response,
        ):
            assert response.status == 202
            job_id = (await response.json())["job_id"]
            ended = await wait_until_terminal(JobStore(topology.jobs, topology.transcripts), [job_id], within_s=90)
        assert ended[job_id].status == "done"
    finally:
        await nc.close()


@pytest.mark.parametrize("secured_nats", [USER_PASSWORD], indirect=True)
async def test_wrong_password_is_a_clear_error_at_start_up(settings: Settings, secured_nats: EmbeddedNats) -> None:
    wrong = with_server(settings, secured_nats, nats_user=USER, nats_password="wrong")
    with pytest.raises(NatsUnavailableError, match=r"refused this client.*Authorization Violation"):
        await asyncio.wait_for(connect(wrong, secured_nats.url, name="wrong"), 10)


@pytest.mark.parametrize("secured_nats", [USER_PASSWORD], indirect=True)
async def test_worker_with_a_wrong_password_exits_with_the_reason(
    settings: Settings, secured_nats: EmbeddedNats
) -> None:
    env = worker_env(with_server(settings, secured_nats), JETSCRIBE_NATS_USER=USER, JETSCRIBE_NATS_PASSWORD="wrong")
    done = await asyncio.to_thread(
        subprocess.run, [*jetscribe_command(), "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "refused this client" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("secured_nats", [TOKEN_ONLY], indirect=True)
async def test_token_authenticates_and_its_absence_is_refused(settings: Settings, secured_nats: EmbeddedNats) -> None:
    nc = await connect(with_server(settings, secured_nats, nats_token=TOKEN), secured_nats.url, name="token")
    try:
        topology = await ensure_topology(nc.jetstream(), settings)
        await topology.jobs.put("probe", b"1")
        assert (await topology.jobs.get("probe")).value == b"1"
    finally:
        await nc.close()
    with pytest.raises(NatsUnavailableError, match="refused"):
        await asyncio.wait_for(connect(with_server(settings, secured_nats), secured_nats.url, name="none"), 10)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl command."""
    cert, key = directory / "server.pem", directory / "server-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_with_the_servers_ca_connects_and_without_it_is_refused(settings: Settings, tmp_path: Path) -> None:
    cert, key = await asyncio.to_thread(self_signed_certificate, tmp_path)
    (tmp_path / "stranger").mkdir()
    strangers_cert, _ = await asyncio.to_thread(self_signed_certificate, tmp_path / "stranger")
    tls = f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n}}\n'
    async with EmbeddedNats(tmp_path / "tls", extra_config=tls) as server:
        trusted = with_server(settings, server, nats_tls_ca=cert)
        nc = await connect(trusted, server.url, name="tls")
        try:
            assert nc.connected_server_version.major >= 2
            await ensure_topology(nc.jetstream(), trusted)
        finally:
            await nc.close()
        untrusting = msgspec.structs.replace(trusted, nats_tls_ca=strangers_cert)
        with pytest.raises(NatsUnavailableError, match="refused this client"):
            await asyncio.wait_for(connect(untrusting, server.url, name="untrusting"), 15)


async def test_deploy_accounts_admit_gateway_and_worker_to_one_jetstream_account(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATS_GATEWAY_PASSWORD", "gateway-pass-1")
    monkeypatch.setenv("NATS_WORKER_PASSWORD", "worker-pass-2")
    accounts = (Path(__file__).parents[2] / "deploy" / "nats" / "accounts.conf").read_text()
    async with EmbeddedNats(tmp_path / "accounts", extra_config=accounts) as server:
        gateway_settings = with_server(settings, server, nats_user="gateway", nats_password="gateway-pass-1")
        worker_settings = with_server(settings, server, nats_user="worker", nats_password="worker-pass-2")
        gateway_nc = await connect(gateway_settings, server.url, name="gateway")
        worker_nc = await connect(worker_settings, server.url, name="worker")
        try:
            gateway_side = await ensure_topology(gateway_nc.jetstream(), gateway_settings)
            worker_side = await ensure_topology(worker_nc.jetstream(), worker_settings)
            await gateway_side.jobs.put("shared", b"seen")
            assert (await worker_side.jobs.get("shared")).value == b"seen"
        finally:
            await gateway_nc.close()
            await worker_nc.close()
        swapped = with_server(settings, server, nats_user="worker", nats_password="gateway-pass-1")
        with pytest.raises(NatsUnavailableError, match="refused"):
            await asyncio.wait_for(connect(swapped, server.url, name="swapped"), 10)
