"""Decoding any audio or video file ffmpeg reads into what Whisper takes: 16 kHz mono float32 samples.

ffmpeg runs as a subprocess (built with `ffmpeg-python`) writing raw f32le samples to a pipe; the
wait happens in a thread so the event loop keeps heartbeating. Its stderr is turned into an error
that tells the submitter what is wrong with the file.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Final

import ffmpeg
import numpy as np
import numpy.typing as npt

from jetscribe.errors import FfmpegMissingError
from jetscribe.ffmpeg import ffmpeg_binary
from worker.errors import BadAudioError, PermanentError

SAMPLE_RATE: Final = 16_000
_STDERR_REASONS: Final = (
    ("Invalid data found when processing input", "it is not an audio or video file ffmpeg can read"),
    ("does not contain any stream", "it contains no audio stream"),
    ("matches no streams", "it contains no audio stream"),
    ("Output file is empty", "it contains no audio"),
    ("moov atom not found", "the MP4/M4A container is incomplete (moov atom not found)"),
    ("End of file", "the file ends before any audio"),
)

Samples = npt.NDArray[np.float32]


def _command(path: Path) -> list[str]:
    stream = (
        ffmpeg.input(str(path))
        .output("pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=SAMPLE_RATE, map="0:a:0", vn=None)
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    )
    return [str(arg) for arg in stream.compile(cmd=ffmpeg_binary())]


def explain_failure(stderr: str, returncode: int, path: Path) -> str:
    """What a failed ffmpeg run says about the input, in words for the submitter."""
    # The temp file's name means nothing to the submitter.
    lines = [line.strip().replace(str(path), "input") for line in stderr.splitlines() if line.strip()]
    for marker, reason in _STDERR_REASONS:
        for line in lines:
            if marker in line:
                return f"cannot decode the audio: {reason} (ffmpeg: {line})"
    last = lines[-1] if lines else "no message"
    return f"cannot decode the audio: ffmpeg failed with exit status {returncode} (ffmpeg: {last})"


class Decoding:
    """One ffmpeg run; `kill()` stops it early (cancel or hand-back) from the event loop."""

    def __init__(self, path: Path) -> None:
        try:
            command = _command(path)
        except FfmpegMissingError as exc:
            raise PermanentError(str(exc)) from exc
        self._path = path
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()

    def _wait(self) -> tuple[bytes, bytes, int]:
        out, err = self._process.communicate()
        return out, err, self._process.returncode

    async def samples(self) -> Samples:
        """Wait for ffmpeg off the loop; raise BadAudioError unless it produced audio."""
        try:
            out, err, returncode = await asyncio.shield(asyncio.to_thread(self._wait))
        except asyncio.CancelledError:
            self.kill()
            await asyncio.to_thread(self._process.wait)
            raise
        if returncode != 0:
            raise BadAudioError(explain_failure(err.decode("utf-8", "replace"), returncode, self._path))
        usable = len(out) - len(out) % 4
        if usable == 0:
            raise BadAudioError("cannot decode the audio: it holds no samples (zero-length audio)")
        return np.frombuffer(out, dtype=np.float32, count=usable // 4)


async def decode_file(path: Path) -> Samples:
    """16 kHz mono float32 samples of the first audio stream in `path`."""
    return await Decoding(path).samples()
