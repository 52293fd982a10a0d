"""Decoding any audio or video file ffmpeg reads into what Whisper takes: 16 kHz mono float32 samples.

Which audio: the stream ffmpeg itself picks (the container's default audio stream; not simply the first, which
in a film or a recording with several tracks may be silent), or the one a job names (`audio_stream`). ffmpeg
decodes it to stereo and the mono mix is made here, block by block: the mean of the two channels, unless that
mean loses most of the louder channel's energy (channels in opposite phase, L = −R, cancel in a plain downmix),
in which case the louder channel alone is kept.

Bounded in every direction, because the file comes from whoever submitted the job:
- **What ffmpeg may open.** Input through the `file` protocol only, and only the container formats
  in `FORMATS` (`-protocol_whitelist`, `-format_whitelist`): playlists (HLS), concat scripts,
  SDP and every other demuxer that reads further files or URLs are refused as bad audio.
- **How long the audio may be.** A probe (`ffmpeg -i`, whose "Duration:" line comes from the
  container's header; imageio-ffmpeg ships no ffprobe) refuses audio longer than `max_audio_s`
  before anything is decoded. A header can lie, so the decode itself is bounded too: ffmpeg's `-t`,
  and the PCM pipe is read incrementally into a buffer capped at `max_audio_s` × 64,000 bytes;
  passing the cap kills ffmpeg and fails the job.
- **How much one slot holds.** Every byte read is taken from the slot's `AudioBudget` first.

ffmpeg runs as an asyncio subprocess, so reading its output never blocks the event loop. Its stderr
is turned into an error that tells the submitter what is wrong with the file, without any path
of the worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Final

import ffmpeg
import numpy as np
import numpy.typing as npt

from jetscribe.errors import FfmpegMissingError
from jetscribe.ffmpeg import ffmpeg_binary
from jetscribe.stage.budget import BYTES_PER_AUDIO_S, AudioBudget
from jetscribe.stage.errors import AudioTooLongError, BadAudioError, PermanentError

SAMPLE_RATE: Final = 16_000
READ_BYTES: Final = 1 << 20
"""PCM read from ffmpeg (and taken from the budget) at a time: 8 s of stereo audio, 16 s of mono."""
CHANNELS: Final = 2
FRAME_BYTES: Final = 4 * CHANNELS
CANCELLED_MIX: Final = 0.3
"""A block whose channel mean keeps less than this share of its louder channel's energy is a cancelling mix."""
STDERR_KEEP_LINES: Final = 50
PROBE_STDERR_BYTES: Final = 1 << 20
FORMATS: Final = (
    # ffmpeg demuxer names (`ffmpeg -demuxers`): containers that hold their audio themselves.
    "wav", "w64", "aiff", "caf", "au", "flac", "mp3", "aac", "ac3", "eac3", "dts", "truehd", "mlp", "amr", "wv",
    "ape", "tta", "ogg", "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "asf", "avi", "flv", "mpeg",
    "mpegts",
)  # fmt: skip
"""Containers accepted. Left out on purpose: hls, concat, sdp, rtp, image2, tee, data and every other
demuxer that opens further files or URLs, and raw formats that need parameters the submitter cannot give."""
_ACCEPTED: Final = "WAV, FLAC, MP3, AAC, Ogg (Opus, Vorbis), MP4/M4A/MOV, WebM/Matroska, AVI, WMA/ASF, AIFF and similar"
_DURATION: Final = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
# An absolute path: a slash not preceded by a word character ("kb/s" is no path), then at least one more.
_PATH: Final = re.compile(r"(?:file:)?(?<![\w.])/(?:[^\s/'\",:]+/)+[^\s/'\",:]*")
_STDERR_REASONS: Final = (
    ("not on whitelist", f"its format is not one this service accepts (accepted: {_ACCEPTED}; playlists, concat "
                         "scripts, SDP and other files that refer to further files or URLs are refused)"),
    ("Invalid data found when processing input", "it is not an audio or video file ffmpeg can read"),
    ("does not contain any stream", "it contains no audio stream"),
    ("matches no streams", "it contains no audio stream"),
    ("Output file is empty", "it contains no audio"),
    ("moov atom not found", "the MP4/M4A container is incomplete (moov atom not found)"),
    ("End of file", "the file ends before any audio"),
)  # fmt: skip

Samples = npt.NDArray[np.float32]


def format_duration(seconds: float) -> str:
    """`seconds` as H:MM:SS, e.g. 14400 → '4:00:00'."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _input_args() -> dict[str, str]:
    return {"protocol_whitelist": "file", "format_whitelist": ",".join(FORMATS)}


def _binary() -> str:
    try:
        return ffmpeg_binary()
    except FfmpegMissingError as exc:
        raise PermanentError(str(exc)) from exc


def probe_command(path: Path) -> list[str]:
    """`ffmpeg -i path` with the allow-lists: prints the container's header, decodes nothing."""
    return [_binary(), "-hide_banner", "-nostdin", *_flags(_input_args()), "-i", str(path)]


def decode_command(path: Path, max_audio_s: float, *, audio_stream: int | None = None) -> list[str]:
    """ffmpeg writing 16 kHz stereo f32le to stdout, stopping a second past `max_audio_s`: from the audio stream
    ffmpeg chooses, or audio stream number `audio_stream` (counting audio streams from 0)."""
    chosen = {} if audio_stream is None else {"map": f"0:a:{audio_stream}"}
    stream = (
        ffmpeg.input(str(path), **_input_args())
        .output(
            "pipe:", format="f32le", acodec="pcm_f32le", ac=CHANNELS, ar=SAMPLE_RATE, vn=None, sn=None, dn=None,
            t=max_audio_s + 1, **chosen,
        )
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    )  # fmt: skip
    return [str(arg) for arg in stream.compile(cmd=_binary())]


def downmix(frames: npt.NDArray[np.float32]) -> Samples:
    """Mono samples of interleaved stereo `frames` (shape (n, 2)): their mean, or the louder channel when the
    mean cancels (see the module docstring)."""
    mono: Samples = frames.mean(axis=1, dtype=np.float32)
    channel_energy = np.square(frames, dtype=np.float64).mean(axis=0) if frames.size else np.zeros(CHANNELS)
    loudest = int(np.argmax(channel_energy))
    if frames.size and float(np.square(mono, dtype=np.float64).mean()) < CANCELLED_MIX * channel_energy[loudest]:
        return np.ascontiguousarray(frames[:, loudest])
    return mono


def _flags(options: dict[str, str]) -> list[str]:
    return [item for name, value in options.items() for item in (f"-{name}", value)]


def scrub_paths(text: str) -> str:
    """`text` without file system paths: the worker's files are nobody else's business."""
    return _PATH.sub("<file>", text)


def explain_failure(stderr: str, returncode: int) -> str:
    """What a failed ffmpeg run says about the input, in words for the submitter."""
    lines = [scrub_paths(line.strip()) for line in stderr.splitlines() if line.strip()]
    for marker, reason in _STDERR_REASONS:
        for line in lines:
            if marker in line:
                return f"cannot decode the audio: {reason} (ffmpeg: {line})"
    last = lines[-1] if lines else "no message"
    return f"cannot decode the audio: ffmpeg failed with exit status {returncode} (ffmpeg: {last})"


def _failure(stderr: str, returncode: int, audio_stream: int | None) -> BadAudioError:
    if audio_stream is not None and "matches no streams" in stderr:
        return BadAudioError(
            f"cannot decode the audio: it has no audio stream {audio_stream} (`audio_stream` counts the file's "
            "audio streams from 0; leave it out for the file's default audio stream)"
        )
    return BadAudioError(explain_failure(stderr, returncode))


def _too_long(max_audio_s: float, found: str) -> AudioTooLongError:
    return AudioTooLongError(
        f"the audio {found}: this service takes at most {format_duration(max_audio_s)} of audio per job "
        f"(JETSCRIBE_MAX_AUDIO_S={max_audio_s:g}); split it into shorter files"
    )


async def probe_duration(path: Path, *, max_audio_s: float) -> float | None:
    """Seconds of audio the file's header declares (None when it declares none).

    Raises AudioTooLongError past `max_audio_s`, BadAudioError for a format not in `FORMATS`.
    """
    process = await asyncio.create_subprocess_exec(
        *probe_command(path), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        # The header printout is small, but its metadata tags are the submitter's: read a bounded amount.
        err = b""
        while len(err) < PROBE_STDERR_BYTES and (data := await process.stderr.read(PROBE_STDERR_BYTES)):
            err += data
        await process.wait()
    finally:
        await asyncio.shield(_stop(process))
    text = err.decode("utf-8", "replace")
    if "not on whitelist" in text:
        raise BadAudioError(explain_failure(text, process.returncode or 1))
    match = _DURATION.search(text)
    if match is None:
        return None  # no header duration (or no readable file at all): the decode will say what is wrong
    hours, minutes, seconds = match.groups()
    duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if duration > max_audio_s:
        raise _too_long(max_audio_s, f"lasts {format_duration(duration)} by its header")
    return duration


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Kill ffmpeg if it still runs, then read its pipes to their end, which closes their transports."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    for stream in (process.stdout, process.stderr):
        # The process is gone: what is left is at most a pipe's buffer.
        while stream is not None and await stream.read(READ_BYTES):
            pass


class _PcmBuffer:
    """Float32 samples read from ffmpeg into one preallocated array, grown only when the header lied."""

    def __init__(self, expected_bytes: int, cap_bytes: int) -> None:
        self._cap = cap_bytes
        self._raw = np.empty(min(max(expected_bytes, READ_BYTES), cap_bytes), dtype=np.uint8)
        self.size = 0

    def append(self, data: bytes) -> None:
        end = self.size + len(data)
        if end > self._raw.size:
            grown = np.empty(min(max(end, 2 * self._raw.size), self._cap), dtype=np.uint8)
            grown[: self.size] = self._raw[: self.size]
            self._raw = grown
        self._raw[self.size : end] = np.frombuffer(data, dtype=np.uint8)
        self.size = end

    def samples(self) -> Samples:
        usable = self.size - self.size % 4
        return self._raw[:usable].view(np.float32)


async def _take(budget: AudioBudget, waiting: Callable[[], contextlib.AbstractContextManager[None]]) -> None:
    if budget.fits(READ_BYTES):
        await budget.take(READ_BYTES)
        return
    with waiting():
        await budget.take(READ_BYTES)


async def _keep_tail(stream: asyncio.StreamReader, tail: deque[bytes]) -> None:
    while line := await stream.readline():
        tail.append(line)


def pcm_cap_bytes(max_audio_s: float) -> int:
    """Most bytes of samples one decode may produce: `max_audio_s` of 16 kHz float32."""
    return int(max_audio_s * SAMPLE_RATE) * 4


def slot_budget(max_audio_s: float) -> AudioBudget:
    """The budget of one slot: one maximal decode, and the reads it takes ahead of what it keeps."""
    return AudioBudget(pcm_cap_bytes(max_audio_s) + 2 * READ_BYTES)


async def decode_file(
    path: Path,
    *,
    max_audio_s: float,
    expected_s: float | None = None,
    budget: AudioBudget | None = None,
    waiting: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
    audio_stream: int | None = None,
) -> Samples:
    """16 kHz mono float32 samples of the audio stream ffmpeg chooses in `path` (or audio stream `audio_stream`),
    at most `max_audio_s` of them.

    `expected_s` is the probed duration (to size the buffer; None: probe here). With a `budget`,
    the returned samples' `nbytes` stay taken from it (the caller gives them back when done); on
    any error nothing stays taken; `waiting()` wraps each wait for budget (to stop the job's clock).
    Raises AudioTooLongError, BadAudioError.
    """
    if expected_s is None:
        expected_s = await probe_duration(path, max_audio_s=max_audio_s)
    cap = pcm_cap_bytes(max_audio_s)
    buffer = _PcmBuffer(int((expected_s or 0) * BYTES_PER_AUDIO_S) + READ_BYTES, cap)
    process = await asyncio.create_subprocess_exec(
        *decode_command(path, max_audio_s, audio_stream=audio_stream), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    stderr: deque[bytes] = deque(maxlen=STDERR_KEEP_LINES)
    tail = asyncio.create_task(_keep_tail(process.stderr, stderr))
    held = 0
    partial = b""
    try:
        while True:
            # Hold at least one read ahead of what the buffer keeps (a read returns what the pipe has; each read
            # keeps at most half its bytes, once mixed down to mono).
            if budget is not None and held - buffer.size < READ_BYTES:
                await _take(budget, waiting)
                held += READ_BYTES
            data = await process.stdout.read(READ_BYTES)
            if not data:
                break
            data = partial + data
            whole = len(data) - len(data) % FRAME_BYTES
            partial = data[whole:]
            mono = downmix(np.frombuffer(data[:whole], dtype=np.float32).reshape(-1, CHANNELS)).tobytes()
            if buffer.size + len(mono) > cap:
                raise _too_long(max_audio_s, "goes on past the limit while decoding (longer than its header says)")
            buffer.append(mono)
        await process.wait()
        await tail
    except BaseException:
        if budget is not None:
            budget.give_back(held)
        raise
    finally:
        tail.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tail
        await asyncio.shield(_stop(process))
    samples = buffer.samples()
    if budget is not None:
        budget.give_back(held - samples.nbytes)
    if process.returncode != 0:
        if budget is not None:
            budget.give_back(samples.nbytes)
        raise _failure(b"".join(stderr).decode("utf-8", "replace"), process.returncode or 1, audio_stream)
    if samples.size == 0:
        raise BadAudioError("cannot decode the audio: it holds no samples (zero-length audio)")
    return samples
