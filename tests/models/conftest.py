"""Several models in one cluster: in-process workers serving tiny.en, base or both on one real nats-server, and
the real gateway. Nothing is declared here: the live workers alone make the offer (tests of declared models say so).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from schemas import JobRecord
from tests.gateway.conftest import start_gateway  # noqa: F401
from worker.service import Worker

StartWorker = Callable[..., contextlib.AbstractAsyncContextManager[Worker]]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, declared_models=())


@pytest.fixture
def start_worker(settings: Settings, nc: Client, tiny_model: Path, base_model: Path, model_cache: Path) -> StartWorker:
    """`async with start_worker("base", **setting_overrides) as worker:` runs an in-process worker serving `models`:
    "tiny.en", "base", or several from the test model cache ("tiny.en,base")."""
    files = {"tiny.en": tiny_model, "base": base_model}

    @contextlib.asynccontextmanager
    async def start(models: str, **overrides: Any) -> AsyncIterator[Worker]:
        path = files.get(models)
        changed = msgspec.structs.replace(
            settings, whisper_model=models, whisper_model_path=path, models_dir=model_cache, **overrides
        )
        async with Worker(changed, nc) as running:
            yield running

    return start


async def record_when(
    store: JobStore, job_id: str, done: Callable[[JobRecord], bool], within_s: float = 30
) -> JobRecord:
    """The job's record once `done(record)` holds, polling its KV entry."""
    async with asyncio.timeout(within_s):
        while True:
            found = await store.get(job_id)
            if found is not None and done(found.record):
                return found.record
            await asyncio.sleep(0.1)
