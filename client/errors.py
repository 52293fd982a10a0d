"""Errors the Python client raises.

ClientError
├── ApiError                the gateway answered with an error status; carries `status` and the gateway's `message`
├── ServerUnreachableError  no answer: the address is wrong, the service is down, or the request timed out
└── StreamEndedError        a job's event stream kept closing before the job ended
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every error the jetscribe client raises on purpose."""


class ApiError(ClientError):
    """The gateway answered with an error status; `message` is its explanation."""

    def __init__(self, status: int, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s
        """The answer's `Retry-After` in seconds (a full queue, a busy gateway), when it had one."""


class ServerUnreachableError(ClientError):
    """The gateway could not be reached, or did not answer in time."""


class StreamEndedError(ClientError):
    """A job's event stream closed while the job was still queued or running, and reconnecting did not help."""
