"""Worker test fixtures: settings with quick retries and a temp directory to check, workers on demand."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from jetscribe.config import Settings
from worker.service import Worker

StartWorker = Callable[..., contextlib.AbstractAsyncContextManager[Worker]]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Temp audio goes to a directory the tests can look into; transient faults retry quickly."""
    return msgspec.structs.replace(settings, work_dir=tmp_path / "work", retry_delay_s=0.2, fetch_timeout_s=3.0)


@pytest.fixture
def start_worker(settings: Settings, nc: Client) -> StartWorker:
    """`async with start_worker(**setting_overrides) as worker:` runs one more in-process worker."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Worker]:
        async with Worker(msgspec.structs.replace(settings, **overrides), nc) as running:
            yield running

    return start
