"""Speech clips of any length for benchmarks, stitched from the committed English fixtures, and what they say."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Final

from jetscribe.ffmpeg import ffmpeg_binary

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio"
SENTENCES = [FIXTURES / f"en{i}.wav" for i in range(1, 7)]
PAUSE_S: Final = 0.4
"""Silence after each sentence."""


def speech(seconds: float, dest: Path, *, offset: int = 0) -> Path:
    """Write about `seconds` of English speech (sentences with short pauses) to `dest` (format by suffix)."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    inputs: list[str] = []
    total = 0.0
    i = offset
    while total < seconds:
        path = SENTENCES[i % len(SENTENCES)]
        inputs += ["-i", str(path)]
        total += _duration(path) + PAUSE_S
        i += 1
    n = len(inputs) // 2
    pads = "".join(f"[{k}:a]apad=pad_dur={PAUSE_S}[a{k}];" for k in range(n))
    concat = "".join(f"[a{k}]" for k in range(n)) + f"concat=n={n}:v=0:a=1[out]"
    subprocess.run(
        [
            ffmpeg_binary(),
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            *inputs,
            "-filter_complex",
            pads + concat,
            "-map",
            "[out]",
            "-ar",
            "16000",
            "-ac",
            "1",
            "-t",
            str(seconds),
            str(dest),
        ],
        check=True,
    )
    return dest


def whole_sentences(seconds: float, *, offset: int = 0) -> tuple[float, str]:
    """(length in seconds, reference text) of the longest run of whole sentences `speech` stitches from `offset`
    that lasts at most `seconds`: `speech(length, dest, offset=offset)` writes a clip that ends in the pause after
    its last sentence, so the reference (the fixtures' texts.json, in order) holds exactly the words spoken.

    Raises ValueError when not even the first sentence fits."""
    texts = json.loads((FIXTURES / "texts.json").read_text())
    # The same sums in the same order as `speech`, so its loop stops after exactly these sentences.
    total = 0.0
    spoken: list[str] = []
    i = offset
    while True:
        path = SENTENCES[i % len(SENTENCES)]
        length = total + (_duration(path) + PAUSE_S)
        if length > seconds:
            break
        total = length
        spoken.append(texts[path.stem])
        i += 1
    if not spoken:
        first = SENTENCES[offset % len(SENTENCES)]
        raise ValueError(f"{seconds} s is shorter than the first sentence, {first.name}: {_duration(first):.1f} s")
    return total, " ".join(spoken)


def _duration(path: Path) -> float:
    import wave

    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()
