"""Worker test fixtures: settings with quick retries and a temp directory to check, workers on demand."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from jetscribe.config import EngineKind, Settings
from jetscribe.ffmpeg import ffmpeg_binary
from tests.engines import model_path
from tests.worker.jobs import AUDIO
from worker.service import Worker

StartWorker = Callable[..., contextlib.AbstractAsyncContextManager[Worker]]


@pytest.fixture(scope="module")
def tiny_model(engine_kind: EngineKind, model_cache: Path) -> Path:
    """tiny.en for the engine under test: a GGML file or a CTranslate2 directory, from the PyPI package."""
    return model_path(engine_kind, "tiny.en", model_cache)


@pytest.fixture(scope="module")
def base_model(engine_kind: EngineKind, model_cache: Path) -> Path:
    """The multilingual base model for the engine under test."""
    return model_path(engine_kind, "base", model_cache)


@pytest.fixture
def settings(
    settings: Settings, tmp_path: Path, engine_kind: EngineKind, tiny_model: Path, model_cache: Path
) -> Settings:
    """Every worker test runs on each engine; temp audio goes to a directory the tests can look into; transient
    faults retry quickly. A CTranslate2 worker finds tiny.en by name (its package's directory is named `model`)."""
    return msgspec.structs.replace(
        settings,
        engine=engine_kind,
        whisper_model_path=tiny_model if engine_kind == "whispercpp" else None,
        models_dir=model_cache,
        work_dir=tmp_path / "work",
        retry_delay_s=0.2,
        fetch_timeout_s=3.0,
    )


@pytest.fixture
def start_worker(settings: Settings, nc: Client) -> StartWorker:
    """`async with start_worker(**setting_overrides) as worker:` runs one more in-process worker."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Worker]:
        async with Worker(msgspec.structs.replace(settings, **overrides), nc) as running:
            yield running

    return start


@pytest.fixture
async def base_worker(settings: Settings, nc: Client, base_model: Path) -> AsyncIterator[Worker]:
    """A worker running the multilingual base model."""
    base = msgspec.structs.replace(settings, whisper_model="base", whisper_model_path=base_model)
    async with Worker(base, nc) as running:
        yield running


@pytest.fixture
def long_audio(tmp_path: Path) -> Path:
    """Three minutes of speech: long enough that a test can act while whisper runs."""
    path = tmp_path / "long180.ogg"
    subprocess.run(
        [ffmpeg_binary(), "-loglevel", "error", "-stream_loop", "2", "-i", str(AUDIO / "long60.ogg"), "-c", "copy",
         str(path)],
        check=True,
    )  # fmt: skip
    return path
