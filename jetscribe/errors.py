"""Errors shared by every jetscribe component.

JetscribeError
├── ConfigError              a setting is missing or malformed; names the variable and value
├── ModelError               a model (Whisper, speaker encoder) cannot be found, verified, converted or loaded
├── NatsUnavailableError     the NATS server cannot be reached or started
├── FfmpegMissingError       no ffmpeg binary on PATH nor from imageio-ffmpeg
├── UnsafeTargetError        a webhook or audio URL is not http(s) or points at a non-public address
├── JobNotFoundError         no job has this id (or its state has expired)
├── ConcurrentUpdateError    a job's state changed too often during one compare-and-set update
├── TranscriptMissingError   a finished job's transcript object is gone (expired, deleted or damaged)
├── ObjectCorruptError       an object-store object's chunks are missing or do not match its size or digest
└── DirectGetError           a stream refused a Direct Get read (not allowed on it, or a malformed request)

The gateway (`gateway.errors`), the stage workers (`jetscribe.stage.errors`, with the whisper worker's leaves in
`worker.errors`) and the diarizer (`diarizer.errors`) derive their own trees from `JetscribeError`.
"""


class JetscribeError(Exception):
    """Base of every error jetscribe raises on purpose."""


class ConfigError(JetscribeError):
    """A configuration value is missing or malformed."""


class ModelError(JetscribeError):
    """A model (Whisper, or the speaker encoder) cannot be found, verified, converted or loaded."""


class NatsUnavailableError(JetscribeError):
    """The NATS server cannot be reached or started."""


class FfmpegMissingError(JetscribeError):
    """No ffmpeg binary is available."""


class UnsafeTargetError(JetscribeError):
    """An outgoing URL is not absolute http(s), or its host is (or resolves to) a non-public address."""


class JobNotFoundError(JetscribeError):
    """No job has this id (or its state has expired)."""


class ConcurrentUpdateError(JetscribeError):
    """A compare-and-set update of a job lost its race too many times in a row."""


class TranscriptMissingError(JetscribeError):
    """A finished job's transcript object is missing (expired or deleted) or cannot be read."""


class ObjectCorruptError(JetscribeError):
    """An object's chunks are missing, or do not match its recorded size or digest."""


class DirectGetError(JetscribeError):
    """A stream answered a Direct Get request with an error status, or has no Direct Get responder."""
