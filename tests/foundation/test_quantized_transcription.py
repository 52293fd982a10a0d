"""Quantized tiny.en and base load in pywhispercpp and transcribe the English fixtures with a word error rate
within 2 points of their f16 models (Whisper's English normaliser, jiwer), decoded as a worker decodes a job."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Final

import jiwer
import numpy as np
import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from jetscribe.ffmpeg import ffmpeg_binary
from jetscribe.models.quantize import quantize_model, quantized_path
from jetscribe.stage.abort import AbortSignal
from schemas import DecodeOptions
from worker.engine import DecodeRequest, EngineSpec, Hooks, build_engine

AUDIO: Final = Path(__file__).parents[1] / "fixtures" / "audio"
TEXTS: Final[dict[str, str]] = json.loads((AUDIO / "texts.json").read_text())
CLIPS: Final = [*(f"en{i}.wav" for i in range(1, 7)), "long60.ogg"]
MAX_EXTRA_WER: Final = 0.02
normalise: Final = EnglishTextNormalizer()


def decode(path: Path) -> np.ndarray:
    result = subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", "16000",
         "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )  # fmt: skip
    return np.frombuffer(result.stdout, dtype=np.float32)


def word_error_rate(model: Path) -> float:
    """Corpus WER of `model` over every English clip: all word errors over all reference words."""
    hooks = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())
    request = DecodeRequest(language="en", task="transcribe", options=DecodeOptions())
    spec = EngineSpec(kind="whispercpp", model=model.name, path=model, threads=2, use_gpu=False, flash_attn=False)
    with build_engine(spec) as engine:
        heard = [
            " ".join(s.text for s in engine.transcribe(decode(AUDIO / clip), request, hooks).segments) for clip in CLIPS
        ]
    references = [TEXTS[clip.split(".")[0]] for clip in CLIPS]
    return float(jiwer.wer([normalise(t) for t in references], [normalise(t) for t in heard]))


@pytest.fixture(scope="module")
def f16_wer(tiny_model: Path, base_model: Path) -> dict[str, float]:
    return {"tiny.en": word_error_rate(tiny_model), "base": word_error_rate(base_model)}


@pytest.mark.slow
# The first test also pays for the module fixture: f16 tiny.en and base over every English clip, then its own
# model; minutes when the two cores are shared.
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("model", "qtype"),
    [
        ("tiny.en", "q8_0"),
        ("tiny.en", "q5_0"),
        ("base", "q8_0"),
        ("base", "q5_0"),
    ],
)
def test_quantized_model_transcribes_within_two_points_of_f16(
    model: str,
    qtype: str,
    f16_wer: dict[str, float],
    tiny_model: Path,
    base_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    source = {"tiny.en": tiny_model, "base": base_model}[model]
    quantized = quantize_model(source, tmp_path_factory.mktemp(qtype) / quantized_path(source, qtype).name, qtype)

    wer = word_error_rate(quantized)

    assert wer <= f16_wer[model] + MAX_EXTRA_WER, f"{model}-{qtype}: WER {wer:.1%}, f16 {f16_wer[model]:.1%}"
