"""The imported models really transcribe: tiny.en on the English fixtures, base detecting German and Spanish."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
import pytest
from pywhispercpp.model import Model

from jetscribe.ffmpeg import ffmpeg_binary

AUDIO: Final = Path(__file__).parents[1] / "fixtures" / "audio"
TEXTS: Final[dict[str, str]] = json.loads((AUDIO / "texts.json").read_text())
ENGLISH: Final = [f"en{i}" for i in range(1, 7)]
EN1_ENCODINGS: Final = ["en1.mp3", "en1.ogg", "en1.flac", "en1.m4a", "en1.mp4", "en1_stereo44k.wav", "en1_8k.wav"]
MAX_WER: Final = 0.25
SAMPLE_RATE: Final = 16_000
TO_PCM: Final = ("-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-")


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation, so only the words themselves count."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + insertions + deletions, reference length) after normalising both texts."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / words


def decode(path: Path) -> np.ndarray:
    """16 kHz mono float32 samples, as the worker feeds whisper."""
    result = subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(path), *TO_PCM],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return np.frombuffer(result.stdout, dtype=np.float32)


def transcribe(model: Model, path: Path) -> str:
    segments = model.transcribe(decode(path), language="en", n_threads=2)
    return " ".join(segment.text.strip() for segment in segments)


@pytest.fixture(scope="module")
def tiny(tiny_model: Path) -> Iterator[Model]:
    model = Model(str(tiny_model), n_threads=2, redirect_whispercpp_logs_to=None, print_progress=False)
    yield model
    del model


@pytest.fixture(scope="module")
def base(base_model: Path) -> Iterator[Model]:
    model = Model(str(base_model), n_threads=2, redirect_whispercpp_logs_to=None, print_progress=False)
    yield model
    del model


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("The cat sat.", "the CAT, sat!", 0.0),
        ("the cat sat on the mat", "the cat sat on a mat", 1 / 6),
        ("the cat sat", "the black cat sat", 1 / 3),
        ("the cat sat", "cat", 2 / 3),
        ("a b", "c d e f", 2.0),
    ],
    ids=["case and punctuation", "substitution", "insertion", "deletions", "more errors than words"],
)
def test_word_error_rate_counts_every_edit(reference: str, hypothesis: str, expected: float) -> None:
    assert wer(reference, hypothesis) == pytest.approx(expected)


def test_tiny_en_transcribes_the_english_fixtures(tiny: Model) -> None:
    heard = {name: transcribe(tiny, AUDIO / f"{name}.wav") for name in ENGLISH}

    errors, words = map(sum, zip(*(word_errors(TEXTS[name], heard[name]) for name in ENGLISH), strict=True))

    assert errors / words <= MAX_WER, f"WER {errors / words:.0%} over {words} words: {heard}"


@pytest.mark.parametrize("file", EN1_ENCODINGS)
def test_tiny_en_transcribes_every_encoding_of_en1(tiny: Model, file: str) -> None:
    heard = transcribe(tiny, AUDIO / file)

    assert wer(TEXTS["en1"], heard) <= MAX_WER, heard


@pytest.mark.slow
def test_tiny_en_transcribes_the_clip_of_a_minute(tiny: Model) -> None:
    samples = decode(AUDIO / "long60.ogg")
    heard = " ".join(s.text.strip() for s in tiny.transcribe(samples, language="en", n_threads=2))

    assert len(samples) >= 60 * SAMPLE_RATE
    assert wer(TEXTS["long60"], heard) <= MAX_WER, heard


@pytest.mark.parametrize(("file", "language"), [("de1.wav", "de"), ("es1.wav", "es"), ("en1.wav", "en")])
def test_base_detects_the_spoken_language(base: Model, file: str, language: str) -> None:
    (detected, probability), _ = base.auto_detect_language(decode(AUDIO / file), n_threads=2)

    assert detected == language, f"{file}: detected {detected} with p={probability:.2f}"
