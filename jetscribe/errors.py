"""Errors shared by every jetscribe component.

JetscribeError
├── ConfigError        a setting is missing or malformed; names the variable and value
├── ModelError         a Whisper model cannot be found, converted or loaded
├── NatsUnavailableError  the NATS server cannot be reached or started
├── FfmpegMissingError    no ffmpeg binary on PATH nor from imageio-ffmpeg
└── UnsafeTargetError     a webhook or audio URL is not http(s) or points at a non-public address
"""


class JetscribeError(Exception):
    """Base of every error jetscribe raises on purpose."""


class ConfigError(JetscribeError):
    """A configuration value is missing or malformed."""


class ModelError(JetscribeError):
    """A Whisper model cannot be found, converted or loaded."""


class NatsUnavailableError(JetscribeError):
    """The NATS server cannot be reached or started."""


class FfmpegMissingError(JetscribeError):
    """No ffmpeg binary is available."""


class UnsafeTargetError(JetscribeError):
    """An outgoing URL is not absolute http(s), or its host is (or resolves to) a non-public address."""
