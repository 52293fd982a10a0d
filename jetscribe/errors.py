"""Errors shared by every jetscribe component.

JetscribeError
├── ConfigError        a setting is missing or malformed; names the variable and value
├── ModelError         a Whisper model cannot be found, converted or loaded
├── NatsUnavailableError  the NATS server cannot be reached or started
└── FfmpegMissingError    no ffmpeg binary on PATH nor from imageio-ffmpeg
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
