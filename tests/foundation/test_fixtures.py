"""The committed audio fixtures are what tests elsewhere rely on them to be."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from typing import Final

import pytest

from jetscribe.ffmpeg import ffmpeg_binary

AUDIO: Final = Path(__file__).parents[1] / "fixtures" / "audio"
TEXTS: Final[dict[str, str]] = json.loads((AUDIO / "texts.json").read_text())
PCM: Final = 1
MU_LAW: Final = 7
TO_PCM: Final = ("-f", "f32le", "-ac", "1", "-ar", "16000", "-")


def wav_format(path: Path) -> tuple[int, int, int]:
    """(format tag, channels, sample rate) from a WAV file's `fmt ` chunk."""
    data = path.read_bytes()
    offset = 12
    while offset < len(data):
        chunk, size = struct.unpack_from("<4sI", data, offset)
        if chunk == b"fmt ":
            return struct.unpack_from("<HHI", data, offset + 8)
        offset += 8 + size + (size & 1)
    raise AssertionError(f"{path} has no fmt chunk")


def decode(path: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(path), *TO_PCM],
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_texts_cover_every_spoken_fixture() -> None:
    assert set(TEXTS) == {*(f"en{i}" for i in range(1, 7)), "de1", "de1_en", "es1", "es1_en", "long60"}
    for i in range(1, 7):
        assert 5 <= len(TEXTS[f"en{i}"].split()) <= 10
    assert len(set(TEXTS.values())) == len(TEXTS)


@pytest.mark.parametrize("name", [*(f"en{i}" for i in range(1, 7)), "de1", "es1"])
def test_sentences_are_16_khz_mono_pcm(name: str) -> None:
    assert wav_format(AUDIO / f"{name}.wav") == (PCM, 1, 16_000)


def test_the_telephone_and_stereo_variants_have_their_formats() -> None:
    assert wav_format(AUDIO / "en1_8k.wav") == (MU_LAW, 1, 8_000)
    assert wav_format(AUDIO / "en1_stereo44k.wav") == (PCM, 2, 44_100)


def test_the_long_clip_lasts_at_least_a_minute() -> None:
    result = decode(AUDIO / "long60.ogg")

    assert result.returncode == 0
    assert len(result.stdout) // 4 >= 60 * 16_000


@pytest.mark.parametrize("name", ["not_audio.txt", "empty.wav", "video_no_audio.mp4"])
def test_inputs_without_audio_do_not_decode(name: str) -> None:
    result = decode(AUDIO / name)

    assert result.returncode != 0
    assert result.stdout == b""


def test_the_zero_length_wav_decodes_to_no_samples() -> None:
    result = decode(AUDIO / "zero_length.wav")

    assert result.returncode == 0
    assert result.stdout == b""


def test_the_truncated_mp3_holds_only_the_start_of_en1() -> None:
    whole, truncated = decode(AUDIO / "en1.mp3"), decode(AUDIO / "truncated.mp3")

    assert 0 < len(truncated.stdout) < len(whole.stdout) // 2


def test_the_fixtures_stay_small() -> None:
    assert sum(p.stat().st_size for p in AUDIO.iterdir()) < 2_000_000
