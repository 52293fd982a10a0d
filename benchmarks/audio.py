"""Speech clips of any length for benchmarks, stitched from the committed English fixtures."""

from __future__ import annotations

import subprocess
from pathlib import Path

from jetscribe.ffmpeg import ffmpeg_binary

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio"
SENTENCES = [FIXTURES / f"en{i}.wav" for i in range(1, 7)]


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
        total += _duration(path) + 0.4
        i += 1
    n = len(inputs) // 2
    pads = "".join(f"[{k}:a]apad=pad_dur=0.4[a{k}];" for k in range(n))
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


def _duration(path: Path) -> float:
    import wave

    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()
