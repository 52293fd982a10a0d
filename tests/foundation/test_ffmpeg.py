"""Finding ffmpeg: the system binary, else imageio-ffmpeg's, so a pip-only install decodes audio too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jetscribe.ffmpeg import ffmpeg_binary

EN1_OGG = Path(__file__).parents[1] / "fixtures" / "audio" / "en1.ogg"
DECODE_EN1 = f"""
import subprocess
from jetscribe.ffmpeg import ffmpeg_binary
binary = ffmpeg_binary()
pcm = subprocess.run(
    [binary, "-nostdin", "-loglevel", "error", "-i", {str(EN1_OGG)!r}, "-f", "f32le", "-ac", "1", "-ar", "16000", "-"],
    capture_output=True, check=True,
).stdout
print(binary)
print(len(pcm) // 4)
"""


def run_python(code: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "IMAGEIO_FFMPEG_EXE"}
    env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_ffmpeg_binary_runs() -> None:
    result = subprocess.run([ffmpeg_binary(), "-version"], capture_output=True, text=True, timeout=30, check=False)

    assert result.returncode == 0
    assert result.stdout.startswith("ffmpeg version")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no system ffmpeg on PATH")
def test_the_system_ffmpeg_on_path_is_preferred() -> None:
    result = run_python(DECODE_EN1, os.environ["PATH"])

    assert result.returncode == 0, result.stderr
    assert "imageio_ffmpeg" not in result.stdout.splitlines()[0]


def test_without_ffmpeg_on_path_the_imageio_ffmpeg_binary_decodes_audio(tmp_path: Path) -> None:
    result = run_python(DECODE_EN1, str(tmp_path))

    assert result.returncode == 0, result.stderr
    binary, samples = result.stdout.splitlines()
    assert "imageio_ffmpeg" in binary
    assert int(samples) > 16_000


def test_without_any_ffmpeg_the_error_says_how_to_install_one(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['imageio_ffmpeg'] = None  # as if the package were not installed\n"
        "from jetscribe.errors import FfmpegMissingError\n"
        "from jetscribe.ffmpeg import ffmpeg_binary\n"
        "try:\n"
        "    ffmpeg_binary()\n"
        "except FfmpegMissingError as exc:\n"
        "    print(exc)\n"
    )

    result = run_python(code, str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "ffmpeg is not on PATH: install it (apt-get install ffmpeg) or `pip install imageio-ffmpeg`"
    )
