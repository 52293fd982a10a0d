"""A real service for the official `openai` SDK: nats-server, gateway (with an API key), a tiny.en worker and a
diarization worker on loopback, shared by a module's tests (each real transcription costs seconds of the machine's
two cores)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import pytest
import pytest_asyncio
from nats.aio.client import Client
from openai import AsyncOpenAI

from diarization import DiarizationWorker
from gateway.main import GatewayServer
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.topology import ensure_topology
from worker.service import Worker

AUDIO: Final = Path(__file__).parents[1] / "fixtures" / "audio"
TEXTS: Final[dict[str, str]] = json.loads((AUDIO / "texts.json").read_text())
API_KEY: Final = "openai-test-key"


@dataclass(frozen=True)
class Service:
    url: str
    nc: Client
    settings: Settings


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("openai") / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service_settings(tmp_path_factory: pytest.TempPathFactory, module_nats: EmbeddedNats, tiny_model: Path) -> Settings:
    return Settings(
        host="127.0.0.1",
        port=0,
        data_dir=tmp_path_factory.mktemp("openai-data"),
        nats_url=module_nats.url,
        whisper_model="tiny.en",
        whisper_model_path=tiny_model,
        use_gpu=False,
        threads=2,
        allow_private_targets=True,
        worker_heartbeat_ttl_s=5.0,
        shutdown_grace_s=5.0,
        api_keys=(API_KEY,),
        sse_recheck_s=1.0,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(service_settings: Settings) -> AsyncIterator[Service]:
    """Gateway, one worker and one diarization worker, running for the whole module."""
    assert service_settings.nats_url is not None
    nc = await connect(service_settings, service_settings.nats_url, name="openai-tests")
    try:
        topology = await ensure_topology(nc.jetstream(), service_settings)
        async with (
            Worker(service_settings, nc),
            DiarizationWorker(service_settings, nc),
            GatewayServer(service_settings, nc, topology) as gateway,
        ):
            yield Service(url=gateway.url, nc=nc, settings=service_settings)
    finally:
        await nc.close()


@pytest_asyncio.fixture(loop_scope="module")
async def openai_client(service: Service) -> AsyncIterator[AsyncOpenAI]:
    """The official SDK pointed at the service: only `base_url` and `api_key` differ from OpenAI's."""
    async with AsyncOpenAI(base_url=f"{service.url}/v1", api_key=API_KEY, max_retries=0) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def http(service: Service) -> AsyncIterator[aiohttp.ClientSession]:
    """Raw HTTP with the API key, for what the SDK does not expose."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(base_url=service.url, headers=headers) as session:
        yield session
