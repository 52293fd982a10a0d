"""Diarization-stage fixtures: a two-voice conversation on disk, the speaker encoder loaded once, diarization
workers on demand."""

from __future__ import annotations

import contextlib
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from nats.aio.client import Client

from diarization import DiarizationWorker
from diarizer import Diarizer
from jetscribe.config import Settings
from tests.diarizer.conversations import SAMPLE_RATE, converse, round_robin

StartDiarizer = Callable[..., contextlib.AbstractAsyncContextManager[DiarizationWorker]]


@pytest.fixture(scope="session")
def diarizer() -> Diarizer:
    return Diarizer.load()


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
