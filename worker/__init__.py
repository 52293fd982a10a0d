"""The transcription worker: consumes jobs from JetStream and runs Whisper on them (see `worker.service`)."""

from worker.service import Worker

__all__ = ["Worker"]
