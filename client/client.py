"""`JetscribeClient`: submit audio (a file or a URL), follow jobs over SSE, list, cancel, fetch transcripts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, Self, TypeVar

import aiohttp
import msgspec

from client.errors import ApiError, ServerUnreachableError, StreamEndedError
from client.sse import EventStreamParser, ServerSentEvent
from schemas import TERMINAL_STATUSES, DecodeOptions, Job, JobStatus, SchemaError, Task
from schemas.api import Health, JobList
from schemas.codec import decode_health, decode_job, decode_job_list

T = TypeVar("T")

UPLOAD_CHUNK_BYTES: Final = 256 * 1024
STREAM_RECONNECTS: Final = 5
RECONNECT_DELAY_S: Final = 1.0

UploadProgress = Callable[[int, int], None]
"""Called as the upload goes: (bytes sent, bytes in all)."""
JobProgress = Callable[[int], None]
"""Called with the job's progress, 0–100, as the event stream reports it."""


class JetscribeClient:
    """Submit audio, follow jobs (SSE), list, cancel and fetch transcripts: one client per gateway address."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 300.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return self._base_url

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
        options: DecodeOptions | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
        filename: str = "audio",
        on_upload: UploadProgress | None = None,
    ) -> str:
        """Upload audio (a path or bytes) and queue a job; returns its id. `options` are the decoding options
        (those left at their defaults are not sent); `model` None runs it with the service's default model.
        `on_upload` follows the upload."""
        form = _form(language, task, webhook_url, options, model)
        if isinstance(audio, bytes):
            form.add_field("audio", audio, filename=filename, content_type="application/octet-stream")
            return await self._submit(form, idempotency_key)
        path = Path(audio)
        # The file is opened here and read in the default executor, chunk by chunk, as aiohttp sends it.
        with path.open("rb") as file:  # noqa: ASYNC230
            total = os.fstat(file.fileno()).st_size
            payload = aiohttp.AsyncIterablePayload(_chunks(file, total, on_upload))
            form.add_field("audio", payload, filename=path.name, content_type="application/octet-stream")
            return await self._submit(form, idempotency_key)

    async def submit_url(
        self,
        audio_url: str,
        *,
        language: str | None = None,
        task: Task = "transcribe",
        webhook_url: str | None = None,
        options: DecodeOptions | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Queue a job whose audio a worker downloads from `audio_url` (http or https); returns its id."""
        form = _form(language, task, webhook_url, options, model)
        form.add_field("audio_url", audio_url)
        return await self._submit(form, idempotency_key)

    async def _submit(self, form: aiohttp.FormData, idempotency_key: str | None) -> str:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        async with self._request("POST", "/jobs", data=form, headers=headers) as response:
            body = await response.read()
        try:
            return str(json.loads(body)["job_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(response.status, f"unexpected answer to POST /jobs: {body[:200]!r}") from exc

    async def get(self, job_id: str) -> Job:
        async with self._request("GET", f"/jobs/{job_id}") as response:
            return _decoded(decode_job, await response.read(), response.status)

    async def list_jobs(
        self, *, status: JobStatus | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JobList:
        """One page of jobs, newest first; pass its `next_cursor` as `cursor` for the next page."""
        params = {k: str(v) for k, v in (("status", status), ("limit", limit), ("cursor", cursor)) if v is not None}
        async with self._request("GET", "/jobs", params=params) as response:
            return _decoded(decode_job_list, await response.read(), response.status)

    async def jobs(self, *, status: JobStatus | None = None, page_size: int = 100) -> AsyncIterator[Job]:
        """Every job (in `status`, if given), newest first, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list_jobs(status=status, limit=page_size, cursor=cursor)
            for job in page.jobs:
                yield job
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def cancel(self, job_id: str) -> None:
        async with self._request("DELETE", f"/jobs/{job_id}"):
            pass

    async def transcript(self, job_id: str, fmt: str = "txt") -> str:
        async with self._request("GET", f"/jobs/{job_id}/transcript", params={"format": fmt}) as response:
            return await response.text()

    async def health(self) -> Health:
        """The gateway's health report; a degraded service (HTTP 503) is a report too, not an error."""
        async with self._request("GET", "/health", accept=(503,)) as response:
            return _decoded(decode_health, await response.read(), response.status)

    async def events(self, job_id: str, *, last_event_id: str | None = None) -> AsyncIterator[ServerSentEvent]:
        """The job's Server-Sent Events until the stream closes (after `done`)."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._request("GET", f"/jobs/{job_id}/stream", headers=headers, timeout=timeout) as response:
            parser = EventStreamParser()
            try:
                async for chunk in response.content.iter_any():
                    for event in parser.feed(chunk):
                        yield event
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                return  # the stream broke off: the caller reconnects or reads the job

    async def wait(self, job_id: str, *, on_progress: JobProgress | None = None) -> Job:
        """Follow the job until it ends; returns the finished job (segments included when done).

        A stream that closes early (a gateway restarting) is reopened from the last event seen.
        """
        last_id: str | None = None
        for attempt in range(STREAM_RECONNECTS + 1):
            async for event in self.events(job_id, last_event_id=last_id):
                last_id = event.id or last_id
                if event.event in ("progress", "reset") and on_progress is not None and isinstance(event.data, dict):
                    on_progress(int(event.data.get("percent", 0)))
                if event.event == "done":
                    return await self.get(job_id)
            job = await self.get(job_id)
            if job.status in TERMINAL_STATUSES:
                return job
            if attempt < STREAM_RECONNECTS:
                await asyncio.sleep(RECONNECT_DELAY_S)
        raise StreamEndedError(
            f"the event stream of job {job_id} closed {STREAM_RECONNECTS + 1} times while the job was {job.status}"
        )

    @contextlib.asynccontextmanager
    async def _request(
        self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request; an error status becomes ApiError, no answer becomes ServerUnreachableError."""
        url = f"{self._base_url}{path}"
        try:
            async with self.session.request(method, url, **kwargs) as response:
                if response.status >= 400 and response.status not in accept:
                    message = _error_message(await response.read(), response)
                    raise ApiError(response.status, message, retry_after_s=_retry_after(response))
                yield response
        except aiohttp.ClientConnectionError as exc:
            raise ServerUnreachableError(f"no answer from jetscribe at {self._base_url} ({exc})") from exc
        except TimeoutError as exc:
            raise ServerUnreachableError(f"{method} {url} did not complete in time") from exc


def _form(
    language: str | None, task: Task, webhook_url: str | None, options: DecodeOptions | None, model: str | None
) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    if language:
        form.add_field("language", language)
    form.add_field("task", task)
    if model:
        form.add_field("model", model)
    if webhook_url:
        form.add_field("webhook_url", webhook_url)
    # DecodeOptions leaves its defaults out when encoded: only what the caller changed is sent.
    for name, value in msgspec.to_builtins(options or DecodeOptions()).items():
        form.add_field(name, _form_text(value))
    return form


def _form_text(value: object) -> str:
    """An option as the gateway reads a form field: `true`/`false`, numbers, lists comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


async def _chunks(file: BinaryIO, total: int, on_upload: UploadProgress | None) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    sent = 0
    if on_upload is not None:
        on_upload(0, total)
    while chunk := await loop.run_in_executor(None, file.read, UPLOAD_CHUNK_BYTES):
        yield chunk
        sent += len(chunk)
        if on_upload is not None:
            on_upload(sent, total)


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _error_message(body: bytes, response: aiohttp.ClientResponse) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip() or response.reason or ""


def _decoded(decode: Callable[[bytes], T], body: bytes, status: int) -> T:
    try:
        return decode(body)
    except SchemaError as exc:
        raise ApiError(status, f"the gateway's answer is not what this client expects: {exc}") from exc
