"""Speech clips of any length for benchmarks, stitched from the committed English fixtures, and what they say."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from jetscribe.ffmpeg import ffmpeg_binary

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio"
SENTENCES = [FIXTURES / f"en{i}.wav" for i in range(1, 7)]
PAUSE_S: Final = 0.4
"""Silence after each sentence."""
STORY_DIR: Final = Path(tempfile.gettempdir()) / "jetscribe-bench-story"


def story_sentences() -> list[Path]:
    """The twenty sentences of the `long60` fixture's text, each spoken by espeak-ng as 16 kHz mono WAV (cached in
    `STORY_DIR`; their texts in `texts()`). Stitched, they repeat only every minute or so, whereas en1–en6 repeat
    every 22 s: a 30 s window that hears a sentence twice compresses like a repetition loop, and decoders that test
    the compression ratio (faster-whisper's temperature fallback) decode it again and again."""
    sentences = re.findall(r"[^.]+\.", json.loads((FIXTURES / "texts.json").read_text())["long60"])
    STORY_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, sentence in enumerate(s.strip() for s in sentences):
        path = STORY_DIR / f"story{k:02}.wav"
        if not path.exists():
            raw = STORY_DIR / f"story{k:02}.espeak.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), sentence], check=True)
            subprocess.run(
                [ffmpeg_binary(), "-loglevel", "error", "-y", "-i", str(raw), "-ar", "16000", "-ac", "1", str(path)],
                check=True,
            )
        (STORY_DIR / f"story{k:02}.txt").write_text(sentence)
        paths.append(path)
    return paths


def texts() -> dict[str, str]:
    """What each sentence file says, by file stem: the fixtures' and the story's."""
    known: dict[str, str] = json.loads((FIXTURES / "texts.json").read_text())
    known.update({p.stem: p.read_text() for p in STORY_DIR.glob("story*.txt")})
    return known


def speech(seconds: float, dest: Path, *, offset: int = 0, pool: Sequence[Path] = SENTENCES) -> Path:
    """Write about `seconds` of English speech (sentences of `pool` in turn, from `offset`, with short pauses) to
    `dest` (format by suffix)."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    inputs: list[str] = []
    total = 0.0
    i = offset
    while total < seconds:
        path = pool[i % len(pool)]
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


def whole_sentences(seconds: float, *, offset: int = 0, pool: Sequence[Path] = SENTENCES) -> tuple[float, str]:
    """(length in seconds, reference text) of the longest run of whole sentences `speech` stitches from `offset`
    that lasts at most `seconds`: `speech(length, dest, offset=offset)` writes a clip that ends in the pause after
    its last sentence, so the reference (the fixtures' texts.json, in order) holds exactly the words spoken.

    Raises ValueError when not even the first sentence fits."""
    said = texts()
    # The same sums in the same order as `speech`, so its loop stops after exactly these sentences.
    total = 0.0
    spoken: list[str] = []
    i = offset
    while True:
        path = pool[i % len(pool)]
        length = total + (_duration(path) + PAUSE_S)
        if length > seconds:
            break
        total = length
        spoken.append(said[path.stem])
        i += 1
    if not spoken:
        first = pool[offset % len(pool)]
        raise ValueError(f"{seconds} s is shorter than the first sentence, {first.name}: {_duration(first):.1f} s")
    return total, " ".join(spoken)


def _duration(path: Path) -> float:
    import wave

    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()
