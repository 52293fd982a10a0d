"""Locating the ffmpeg binary: the system one, else the static build `imageio-ffmpeg` ships."""

from __future__ import annotations

import functools
import shutil

from jetscribe.errors import FfmpegMissingError


@functools.cache
def ffmpeg_binary() -> str:
    """Path of an ffmpeg executable; a pip-only install works through imageio-ffmpeg."""
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise FfmpegMissingError(
            "ffmpeg is not on PATH: install it (apt-get install ffmpeg) or `pip install imageio-ffmpeg`"
        ) from exc
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise FfmpegMissingError(f"imageio-ffmpeg has no usable ffmpeg binary: {exc}") from exc
