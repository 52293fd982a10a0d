"""Diarization-stage fixtures: the speaker encoder loaded once, diarization workers on demand, a gateway for what
HTTP shows of the stage (the two-voice `conversation_wav` is in tests/conftest.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from nats.aio.client import Client

from diarization import DiarizationWorker
from diarizer import Diarizer
from gateway.main import GatewayServer
from jetscribe.config import Settings
from jetscribe.topology import ensure_topology

StartDiarizer = Callable[..., contextlib.AbstractAsyncContextManager[DiarizationWorker]]


@pytest.fixture(scope="session")
def diarizer() -> Diarizer:
    return Diarizer.load()


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Temp audio goes to a directory the tests can look into; transient faults retry quickly."""
    return msgspec.structs.replace(settings, work_dir=tmp_path / "work", retry_delay_s=0.2, fetch_timeout_s=3.0)


@pytest.fixture
def start_diarizer(settings: Settings, nc: Client, diarizer: Diarizer) -> StartDiarizer:
    """`async with start_diarizer(**setting_overrides) as worker:` runs one more in-process diarization worker."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[DiarizationWorker]:
        running_settings = msgspec.structs.replace(settings, **overrides)
        async with DiarizationWorker(running_settings, nc, diarizer=diarizer) as running:
            yield running

    return start


@pytest.fixture
async def http(settings: Settings, nc: Client) -> AsyncIterator[aiohttp.ClientSession]:
    """A gateway on the test's settings and nats-server, and a client session for it."""
    topology = await ensure_topology(nc.jetstream(), settings)
    async with (
        GatewayServer(settings, nc, topology) as server,
        aiohttp.ClientSession(base_url=server.url) as session,
    ):
        yield session
