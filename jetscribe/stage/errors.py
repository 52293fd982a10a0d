"""Errors a stage worker (whisper or diarization) raises while running a job; the tree maps onto what happens to
the job message. The whisper worker adds its own leaves in `worker.errors` (marked *).

WorkerError
├── RetryableError      a transient fault (NATS timeout, storage hiccup, unreachable URL): nak with a delay
│   └── WhisperLibError* a libwhisper call made through ctypes failed (VAD, segment detail)
├── PermanentError      the job can never succeed as submitted: fail it and term() the message
│   ├── AudioMissingError   the audio object or URL does not exist
│   ├── AudioTooLargeError  the audio at a URL exceeds the size limit
│   ├── AudioTooLongError   the audio lasts longer than `max_audio_s` (by its header or while decoding)
│   ├── BadAudioError       ffmpeg cannot decode it, it has no audio stream, is empty, or is not an accepted format
│   └── UnsupportedJobError* the loaded model cannot do what the job asks
└── JobAbortedError     the job was cancelled, timed out, or the worker is handing it back (carries the reason)
"""

from __future__ import annotations

from typing import Literal

from jetscribe.errors import JetscribeError

AbortReason = Literal["cancelled", "handback", "timeout"]
"""Why a job stopped early: a cancel request, a worker shutting down, or the job's wall-clock limit."""


class WorkerError(JetscribeError):
    """Base of the errors a job can end with inside a stage worker."""


class RetryableError(WorkerError):
    """A transient fault: the job is worth another delivery after a back-off."""


class PermanentError(WorkerError):
    """The job cannot succeed as submitted; retrying would fail the same way."""


class AudioMissingError(PermanentError):
    """The audio the job points to does not exist."""


class AudioTooLargeError(PermanentError):
    """The audio is larger than the configured limit."""


class AudioTooLongError(PermanentError):
    """The audio lasts longer than the configured maximum duration."""


class BadAudioError(PermanentError):
    """The audio cannot be decoded, has no audio stream, or holds no samples."""


class JobAbortedError(WorkerError):
    """The job stopped before finishing: cancelled, past its time limit, or being handed back."""

    def __init__(self, reason: AbortReason) -> None:
        super().__init__(f"job aborted: {reason}")
        self.reason: AbortReason = reason
