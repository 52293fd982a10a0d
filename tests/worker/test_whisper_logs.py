"""whisper.cpp's log lines go to Python logging, not to the worker's stderr: its chatter (about 30 lines per voice
activity detection pass) at DEBUG, its errors as errors."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest

from jetscribe.models.vad import vad_model
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import SAMPLE_RATE, Samples, decode_file
from schemas import DecodeOptions
from tests.engines import loaded_engine
from worker import whisperlib
from worker.engine import DecodeRequest, Hooks
from worker.errors import WhisperLibError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "audio"
SETTINGS = whisperlib.VadSettings(threshold=0.5, min_speech_ms=250, min_silence_ms=500, speech_pad_ms=200)


@pytest.fixture(scope="module")
def sentence() -> Samples:
    return asyncio.run(decode_file(FIXTURES / "en1.wav", max_audio_s=60))


def test_a_transcription_with_voice_activity_detection_writes_nothing_to_stderr(
    model_cache: Path, sentence: Samples, capfd: pytest.CaptureFixture[str]
) -> None:
    hooks = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())
    with loaded_engine("whispercpp", "tiny.en", model_cache) as engine:
        capfd.readouterr()
        found = engine.transcribe(
            sentence, DecodeRequest(language="en", task="transcribe", options=DecodeOptions()), hooks
        )

    assert "garden" in " ".join(s.text for s in found.segments).lower()
    assert capfd.readouterr().err == ""


def test_voice_activity_detection_chatter_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    whisperlib.route_logs()
    with caplog.at_level(logging.DEBUG, logger="worker.whisperlib"):
        whisperlib.speech_regions(vad_model(), np.zeros(SAMPLE_RATE, dtype=np.float32), SETTINGS, SAMPLE_RATE)

    lines = [r for r in caplog.records if r.name == "worker.whisperlib"]
    assert any("speech" in r.getMessage() for r in lines)
    assert {r.levelno for r in lines} == {logging.DEBUG}


def test_whisper_cpp_errors_are_logged_as_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    whisperlib.route_logs()
    missing = tmp_path / "no-such-vad-model.bin"
    with caplog.at_level(logging.WARNING, logger="worker.whisperlib"), pytest.raises(WhisperLibError):
        whisperlib.speech_regions(missing, np.zeros(SAMPLE_RATE, dtype=np.float32), SETTINGS, SAMPLE_RATE)

    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("failed to open" in message and missing.name in message for message in errors), errors
