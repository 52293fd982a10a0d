"""Recordings of the kinds reported to break Whisper servers, built by the tests with espeak-ng and ffmpeg.

Each builder writes one file into a directory and returns its path: speech (espeak-ng, any of its voices),
silence, quiet noise, steady tones, and files assembled from them (speech after silence, two sentences apart,
two audio tracks of which the default one speaks, stereo whose channels cancel in a plain downmix).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

from jetscribe.ffmpeg import ffmpeg_binary

RATE: Final = 16_000
SPEED_WPM: Final = 160


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_binary(), "-loglevel", "error", "-y", *args], check=True)


def speech(directory: Path, name: str, text: str, *, voice: str = "en-us") -> Path:
    """`text` spoken by espeak-ng's `voice`, as 16 kHz mono WAV."""
    raw = directory / f"{name}.espeak.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(SPEED_WPM), "-w", str(raw), text], check=True)
    path = directory / f"{name}.wav"
    _ffmpeg("-i", str(raw), "-ar", str(RATE), "-ac", "1", str(path))
    return path


def silence(directory: Path, name: str, seconds: float) -> Path:
    path = directory / f"{name}.wav"
    _ffmpeg("-f", "lavfi", "-i", f"anullsrc=r={RATE}:cl=mono", "-t", str(seconds), str(path))
    return path


def noise(directory: Path, name: str, seconds: float, *, amplitude: float = 0.05) -> Path:
    """White noise at `amplitude` (full scale 1.0): a fan, a hiss, wind on a microphone."""
    path = directory / f"{name}.wav"
    source = f"anoisesrc=r={RATE}:color=white:amplitude={amplitude}:seed=7"
    _ffmpeg("-f", "lavfi", "-i", source, "-t", str(seconds), "-ac", "1", str(path))
    return path


def tones(directory: Path, name: str, seconds: float) -> Path:
    """A music-like sequence: a chord of three sine tones that changes every second."""
    path = directory / f"{name}.wav"
    expression = "0.2*sin(2*PI*(220+55*floor(t))*t)+0.15*sin(2*PI*(330+55*floor(t))*t)+0.1*sin(2*PI*440*t)"
    _ffmpeg("-f", "lavfi", "-i", f"aevalsrc={expression}:s={RATE}:d={seconds}", "-ac", "1", str(path))
    return path


def joined(directory: Path, name: str, *parts: Path) -> Path:
    """`parts` one after the other, as 16 kHz mono WAV."""
    path = directory / f"{name}.wav"
    inputs = [arg for part in parts for arg in ("-i", str(part))]
    streams = "".join(f"[{i}:a]" for i in range(len(parts)))
    _ffmpeg(*inputs, "-filter_complex", f"{streams}concat=n={len(parts)}:v=0:a=1", "-ar", str(RATE), str(path))
    return path


def two_tracks_default_second(directory: Path, name: str, quiet: Path, spoken: Path) -> Path:
    """Matroska with two audio tracks: the first holds `quiet`, the second `spoken` and is the default track."""
    path = directory / f"{name}.mkv"
    _ffmpeg(
        "-i", str(quiet), "-i", str(spoken), "-map", "0:a", "-map", "1:a", "-c:a", "flac",
        "-disposition:a:0", "0", "-disposition:a:1", "default", str(path),
    )  # fmt: skip
    return path


def opposite_phase(directory: Path, name: str, spoken: Path) -> Path:
    """Stereo whose right channel is the left one inverted (L = −R): a plain downmix is silence."""
    path = directory / f"{name}.wav"
    _ffmpeg("-i", str(spoken), "-filter_complex", "[0:a]pan=stereo|c0=c0|c1=-1*c0[out]", "-map", "[out]", str(path))
    return path
