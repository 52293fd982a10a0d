"""The whisper worker's own errors: leaves of the stage workers' tree (`jetscribe.stage.errors`, drawn there)."""

from __future__ import annotations

from jetscribe.stage.errors import PermanentError, RetryableError


class WhisperLibError(RetryableError):
    """A libwhisper function called through ctypes (`worker.whisperlib`) failed or cannot be reached."""


class UnsupportedJobError(PermanentError):
    """The loaded model cannot do what the job asks (e.g. German on an English-only model)."""
