"""`POST /v1/audio/transcriptions` and `POST /v1/audio/translations`: queue a job, wait for it, answer as OpenAI does.

The upload goes through `gateway.submit.accept` (`POST /jobs`' own path), so the request is an ordinary durable job:
listed in `GET /jobs`, retried on a worker's death, cancellable. The handler then follows the job's events on this
gateway's event hub (subscribing before it reads the job's state, as `gateway.sse` does, so no ending is missed)
and answers once it ends:

- done: the transcript in `response_format`, or with `stream=true` Server-Sent Events in OpenAI's streaming format:
  a `transcript.text.delta` per segment as the worker finishes it, then `transcript.text.done` with the whole text;
- failed or cancelled: 400 in OpenAI's error shape with the job's error, naming the job;
- not ended within `openai_wait_s`: 504 naming the job, whose result `GET /jobs/{id}` gives later (with
  `x-should-retry: false`, which OpenAI's SDKs honour, so a client does not upload the audio again).

A client that disconnects before the answer cancels its job (`openai_cancel_on_disconnect`). A gateway that shuts
down leaves the job running: its result stays at `GET /jobs/{id}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from gateway import keys, submit
from gateway.auth import caller_of
from gateway.errors import OpenAIError, ResourceNotFoundError, StateConflictError
from gateway.fanout import HubClosing, JobItem
from gateway.jobs import cancel, full_job
from gateway.openai_api import answers
from gateway.openai_api.errors import openai_error_response
from gateway.openai_api.models import current_offer
from gateway.openai_api.request import OpenAIRequest, form_shape, read
from gateway.tenants import Caller
from jetscribe.errors import TranscriptMissingError
from jetscribe.jobstore import JobStore
from schemas import Job, Segment, SegmentEvent, Task, TerminalEvent, encode
from schemas.openai_api import TextDeltaEvent, TextDoneEvent

log = logging.getLogger(__name__)

CLIENT_CHECK_S: Final = 0.5
"""How soon a request whose client went away notices it."""
JOB_ID_HEADER: Final = "X-Job-Id"
"""Every answer about a job names it, for `GET /jobs/{id}`."""
NO_RETRY: Final = {"x-should-retry": "false"}
"""OpenAI's SDKs retry a 5xx unless told not to; a retry would upload the audio again and make a second job."""

OnSegment = Callable[[Segment, Job | None], Awaitable[None]]


async def transcriptions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/audio/transcriptions`."""
    return await _serve(request, "transcribe")


async def translations(request: web.Request) -> web.StreamResponse:
    """`POST /v1/audio/translations`: the speech in English."""
    return await _serve(request, "translate")


async def _serve(request: web.Request, task: Task) -> web.StreamResponse:
    if request.content_type != "multipart/form-data":
        got = request.headers.get("Content-Type", "no Content-Type")
        raise OpenAIError(
            400,
            f"{request.path} takes a multipart/form-data body with the audio as the file `file` (got {got!r})",
            param="file",
            code="invalid_value",
        )
    offer = await current_offer(request.app)
    accepted = await submit.accept(request, form_shape(task, offer))
    asked = read(accepted.submission.extra_values, offer, task)
    job_id = accepted.job_id
    log.info("job %s: queued for %s (%s)", job_id, request.path, asked.response_format)
    try:
        if asked.stream:
            return await _stream(request, job_id, asked)
        response = answers.answer(_outcome(await follow(request, job_id)), asked)
        response.headers[JOB_ID_HEADER] = job_id
        return response
    except OpenAIError as exc:
        exc.headers.setdefault(JOB_ID_HEADER, job_id)
        raise
    except ConnectionResetError:
        if request.app[keys.SETTINGS].openai_cancel_on_disconnect:
            await _abandon(request.app, job_id, caller_of(request))
        raise


async def follow(request: web.Request, job_id: str, on_segment: OnSegment | None = None) -> Job:
    """Wait for the job to end and return it with its segments, calling `on_segment` for each segment the worker
    publishes meanwhile. ConnectionResetError when the client goes away; 504 past `openai_wait_s`."""
    app = request.app
    settings = app[keys.SETTINGS]
    store = app[keys.JOB_STORE]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.openai_wait_s
    rechecked_at = -settings.sse_recheck_s
    async with app[keys.HUB].follow(job_id) as events:
        while True:
            if request.transport is None or request.transport.is_closing():
                raise ConnectionResetError(f"the client of job {job_id} went away")
            now = loop.time()
            if now >= deadline:
                raise _still_running(job_id, settings.openai_wait_s)
            if now - rechecked_at >= settings.sse_recheck_s:
                # Before the first event (the job may have ended already), and then now and again in case the
                # terminal event was lost in a NATS outage.
                rechecked_at = now
                current = await store.get(job_id)
                if current is None:
                    raise OpenAIError(500, f"job {job_id} disappeared while it was awaited", code="job_lost")
                if current.record.is_terminal:
                    return await full_job(store, current.record)
            item = await _next(events, min(CLIENT_CHECK_S, deadline - now))
            if isinstance(item, HubClosing):
                raise OpenAIError(
                    503,
                    f"this gateway is shutting down; job {job_id} goes on: fetch its result with GET /jobs/{job_id}",
                    code="shutting_down",
                    headers=NO_RETRY,
                )
            if isinstance(item, TerminalEvent):
                return await _ended(store, item)
            if isinstance(item, SegmentEvent) and on_segment is not None:
                await on_segment(item.segment, None)


async def _next(events: asyncio.Queue[JobItem], timeout_s: float) -> JobItem | None:
    try:
        return await asyncio.wait_for(events.get(), max(0.0, timeout_s))
    except TimeoutError:
        return None


async def _ended(store: JobStore, event: TerminalEvent) -> Job:
    """The ended job with its segments: from KV when it already shows the end, else from the event (KV may lag)."""
    current = await store.get(event.job.id)
    if current is not None and current.record.is_terminal:
        return await full_job(store, current.record)
    job = event.job
    if event.transcript_object and job.status == "done":
        try:
            job.segments = await store.get_transcript(event.transcript_object)
        except TranscriptMissingError as exc:
            log.warning("job %s: %s", job.id, exc)
    return job


def _outcome(job: Job) -> Job:
    """The job if it is done; its failure or cancellation as a 400 in OpenAI's shape."""
    if job.status == "done":
        return job
    if job.status == "cancelled":
        raise OpenAIError(400, f"job {job.id} was cancelled before it finished", code="job_cancelled")
    raise OpenAIError(400, f"the transcription failed (job {job.id}): {job.error}", code="job_failed")


def _still_running(job_id: str, waited_s: float) -> OpenAIError:
    return OpenAIError(
        504,
        f"job {job_id} has not finished within {waited_s:g} s (JETSCRIBE_OPENAI_WAIT_S); it goes on: fetch its "
        f"result with GET /jobs/{job_id} (or /jobs/{job_id}/transcript) instead of sending the audio again",
        code="timeout",
        headers=NO_RETRY,
    )


async def _abandon(app: web.Application, job_id: str, caller: Caller) -> None:
    """Cancel the job of a client that left (shielded: the handler may be cancelled while this runs)."""

    async def cancel_it() -> None:
        try:
            was = await cancel(app, job_id, caller)
        except (StateConflictError, ResourceNotFoundError):
            return  # it ended meanwhile, or expired: nothing to cancel
        log.info("job %s: cancelled (while %s) because its client went away", job_id, was)

    task = asyncio.create_task(cancel_it(), name=f"cancel abandoned job {job_id}")
    await asyncio.shield(task)


async def _stream(request: web.Request, job_id: str, asked: OpenAIRequest) -> web.StreamResponse:
    """The job as OpenAI's streaming transcription events; an error that comes after the headers is an event
    `{"error": {...}}`, which OpenAI's SDKs raise."""
    settings = request.app[keys.SETTINGS]
    store = request.app[keys.JOB_STORE]
    sent: set[int] = set()
    spaced: list[str] = []

    async def send_segment(segment: Segment, job: Job | None) -> None:
        text = segment.text.strip()
        if segment.index in sent or not text:
            return
        if not spaced:
            spaced.append(answers.joiner(job) if job is not None else await _joiner_of(store, job_id))
        delta = f"{spaced[0] if sent else ''}{text}"
        sent.add(segment.index)
        event = TextDeltaEvent(delta=delta)
        if asked.logprobs:
            event.logprobs = answers.logprobs(segment)
        await sse.send(encode(event).decode())

    async with sse_response(
        request,
        allow_all_methods=True,  # OpenAI streams the answer to a POST
        ping_interval=settings.sse_heartbeat_s,
        headers={"X-Accel-Buffering": "no", JOB_ID_HEADER: job_id},
    ) as sse:
        try:
            job = _outcome(await follow(request, job_id, send_segment))
        except OpenAIError as exc:
            await _send_error(sse, exc)
            return sse
        for segment in answers.spoken(job.segments):
            await send_segment(segment, job)  # those that ended before the stream followed the job
        done = TextDoneEvent(text=answers.full_text(job))
        if asked.logprobs:
            done.logprobs = [entry for s in answers.spoken(job.segments) for entry in answers.logprobs(s)]
        await sse.send(encode(done).decode())
    return sse


async def _joiner_of(store: JobStore, job_id: str) -> str:
    """How this job's segment texts join, from its language as the worker has detected it."""
    current = await store.get(job_id)
    if current is None:
        return " "
    record = current.record
    return answers.joiner(record.to_job())


async def _send_error(sse: EventSourceResponse, error: OpenAIError) -> None:
    body = openai_error_response(error).body
    assert isinstance(body, bytes)
    await sse.send(body.decode())
