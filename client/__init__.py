"""A small asyncio client for the jetscribe HTTP API; it depends on `schemas` alone.

async with JetscribeClient("http://localhost:8080") as client:
    job_id = await client.submit("talk.mp3", language="en")
    job = await client.wait(job_id)
    print(" ".join(s.text for s in job.segments))
"""

from client.client import JetscribeClient, JobProgress, UploadProgress
from client.errors import ApiError, ClientError, ServerUnreachableError, StreamEndedError
from client.sse import EventStreamParser, ServerSentEvent

__all__ = [
    "ApiError",
    "ClientError",
    "EventStreamParser",
    "JetscribeClient",
    "JobProgress",
    "ServerSentEvent",
    "ServerUnreachableError",
    "StreamEndedError",
    "UploadProgress",
]
