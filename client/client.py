"""`JetscribeClient`: submit audio, follow jobs (polling or SSE), cancel them and fetch transcripts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from client.errors import ApiError, StreamEndedError
from schemas import TERMINAL_STATUSES, Job, Task
from schemas.codec import decode_job


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: Any
    id: str | None


class JetscribeClient:
    """Submit audio, follow jobs (polling or SSE), cancel them and fetch transcripts."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 300.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this JetscribeClient is already open")
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the client inside `async with JetscribeClient(...)`")
        return self._session

    async def submit(
        self,
        audio: Path | str | bytes,
        *,
        language: str | None = None,
        task: Task = "transcribe",
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
        filename: str = "audio",
    ) -> str:
        """Upload audio (a path or bytes) and queue a job; returns its id."""
        form = aiohttp.FormData()
        if language:
            form.add_field("language", language)
        form.add_field("task", task)
        if webhook_url:
            form.add_field("webhook_url", webhook_url)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if isinstance(audio, bytes):
            form.add_field("audio", audio, filename=filename)
            return await self._submit(form, headers)
        path = Path(audio)
        # aiohttp reads file payloads in its executor; only the open() happens here.
        with path.open("rb") as f:  # noqa: ASYNC230
            form.add_field("audio", f, filename=path.name)
            return await self._submit(form, headers)

    async def _submit(self, form: aiohttp.FormData, headers: Mapping[str, str]) -> str:
        async with self.session.post(f"{self._base_url}/jobs", data=form, headers=headers) as response:
            body = await _json_or_raise(response)
            return str(body["job_id"])

    async def get(self, job_id: str) -> Job:
        async with self.session.get(f"{self._base_url}/jobs/{job_id}") as response:
            await _raise_for_status(response)
            return decode_job(await response.read())

    async def cancel(self, job_id: str) -> None:
        async with self.session.delete(f"{self._base_url}/jobs/{job_id}") as response:
            await _raise_for_status(response)

    async def transcript(self, job_id: str, fmt: str = "txt") -> str:
        async with self.session.get(f"{self._base_url}/jobs/{job_id}/transcript", params={"format": fmt}) as response:
            await _raise_for_status(response)
            return await response.text()

    async def events(self, job_id: str, *, last_event_id: str | None = None) -> AsyncIterator[ServerSentEvent]:
        """The job's Server-Sent Events until the stream closes (after `done`)."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        url = f"{self._base_url}/jobs/{job_id}/stream"
        async with self.session.get(url, headers=headers, timeout=timeout) as response:
            await _raise_for_status(response)
            fields: dict[str, str] = {}
            async for raw in response.content:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line:
                    if not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = fields.get(name, "") + value.removeprefix(" ")
                    continue
                if "data" in fields:
                    yield ServerSentEvent(fields.get("event", "message"), json.loads(fields["data"]), fields.get("id"))
                fields = {}

    async def wait(self, job_id: str) -> Job:
        """Follow the job's event stream until it ends; returns the finished job."""
        async for event in self.events(job_id):
            if event.event == "done":
                return await self.get(job_id)
        job = await self.get(job_id)
        if job.status not in TERMINAL_STATUSES:
            raise StreamEndedError(f"event stream of job {job_id} closed while it was {job.status}")
        return job


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    text = await response.text()
    try:
        message = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        message = text or response.reason or ""
    raise ApiError(response.status, message)


async def _json_or_raise(response: aiohttp.ClientResponse) -> Any:
    await _raise_for_status(response)
    return await response.json()
