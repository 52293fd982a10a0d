"""Running one job message from delivery to ack: claim, fetch, decode, transcribe, record the outcome.

What happens to the message follows from how the job ended:
done / failed (permanent, or past its time limit) / cancelled → recorded, event published, ack
(term for failures); transient fault → last error kept in KV, nak with back-off (the dead-letter
handler takes over once deliveries run out); hand-back on shutdown → state back to queued, the job
message published again under a new message id and the delivered one acked, so a hand-back costs
the job none of its `max_deliver` deliveries (a nak would).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.object_store import ObjectStore

from jetscribe.config import Settings
from jetscribe.errors import JetscribeError
from jetscribe.jobstore import JobStore, Transition
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.budget import AudioBudget
from jetscribe.stage.decode import SAMPLE_RATE, decode_file, probe_duration
from jetscribe.stage.errors import BadAudioError, JobAbortedError, PermanentError, RetryableError
from jetscribe.stage.fetch import AudioDownloader, fetch_object
from jetscribe.stage.outcome import ensure_record, fail_job, publish_terminal, reject_invalid, release_audio, utcnow
from jetscribe.stage.progress import ProgressReporter, first_seq
from schemas import DiarizationMessage, JobMessage, JobRecord, JobTimings, SchemaError, encode, names
from schemas.codec import decode_job_message
from worker.deadline import JobDeadline
from worker.engine import DecodeRequest, Engine, Hooks, Transcription
from worker.errors import UnsupportedJobError

log = logging.getLogger(__name__)

CANCELLED: Final = "cancelled by request"


def _unless_over(now: datetime, change: Callable[[JobRecord], JobRecord]) -> Transition:
    """`change`, except that a finished job is left alone and one whose cancel was requested ends cancelled."""

    def transition(record: JobRecord) -> JobRecord | None:
        if record.is_terminal:
            return None
        if record.cancel_requested:
            return msgspec.structs.replace(record, status="cancelled", completed_at=now, error=CANCELLED)
        return change(record)

    return transition


class _Stopwatch:
    """Seconds between successive laps."""

    def __init__(self) -> None:
        self._last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self._last = now - self._last, now
        return round(elapsed, 3)


@contextlib.asynccontextmanager
async def _background(coro: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run `coro` beside the block; cancel and await it when the block ends."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True, slots=True)
class _Slot:
    """What one worker slot lends a job: its Whisper engine and its decoded-audio budget."""

    engine: Engine
    budget: AudioBudget


class JobRunner:
    """Everything one worker needs to run job messages; one call to `run` per delivery."""

    def __init__(
        self,
        settings: Settings,
        nc: Client,
        store: JobStore,
        audio: ObjectStore,
        downloader: AudioDownloader,
        *,
        worker_id: str,
    ) -> None:
        self._settings = settings
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._store = store
        self._audio = audio
        self._downloader = downloader
        self._worker_id = worker_id
        self.running: dict[str, AbortSignal] = {}
        self.jobs_done: Counter[str] = Counter()
        """Jobs completed (status done), by the model that ran them."""

    async def run(
        self, msg: Msg, engine: Engine, budget: AudioBudget, on_engine: Callable[[], None] = lambda: None
    ) -> None:
        """Take one delivery to its end; never raises for anything a job can do.

        `budget` is the slot's decoded-audio budget. `on_engine` is called once the job holds the
        engine, or has ended without needing it: from then on the slot may take its next job, whose
        audio is fetched and decoded meanwhile.
        """
        try:
            await self._run_message(msg, _Slot(engine, budget), on_engine)
        finally:
            on_engine()

    async def _run_message(self, msg: Msg, slot: _Slot, on_engine: Callable[[], None]) -> None:
        try:
            message = decode_job_message(msg.data)
        except SchemaError as exc:
            await self._guarded(msg, None, None, reject_invalid(self._js, self._store, msg, exc))
            return
        abort = AbortSignal()
        self.running[message.job_id] = abort
        try:
            await self._guarded(msg, message.job_id, abort, self._run(msg, message, slot, abort, on_engine))
        finally:
            if self.running.get(message.job_id) is abort:
                del self.running[message.job_id]
        if message.audio_object is not None and not self._settings.keep_audio:
            await release_audio(self._store, self._audio, message)

    async def _guarded(
        self, msg: Msg, job_id: str | None, abort: AbortSignal | None, work: Coroutine[Any, Any, None]
    ) -> None:
        """Run `work`, mapping what it raises onto the job and the message."""
        try:
            await work
        except JobAbortedError as exc:
            assert job_id is not None and abort is not None
            if exc.reason == "timeout":
                log.info("job %s failed: %s", job_id, abort.detail)
                ending = self._fail(msg, job_id, abort.detail or "the job ran out of time")
            elif exc.reason == "cancelled":
                ending = self._cancel(msg, job_id)
            else:
                ending = self._hand_back(msg, job_id)
            await self._settle(asyncio.shield(ending), msg)
        except PermanentError as exc:
            log.info("job %s failed: %s", job_id, exc)
            ending = self._fail(msg, job_id, str(exc)) if job_id is not None else msg.term()
            await self._settle(asyncio.shield(ending), msg)
        except (RetryableError, NatsError, JetscribeError, TimeoutError, OSError) as exc:
            log.warning("job %s will be retried: %s", job_id, exc)
            await self._settle(asyncio.shield(self._retry(msg, job_id, str(exc) or repr(exc))), msg)
        except Exception as exc:
            log.exception("job %s hit an unexpected error; it will be retried", job_id)
            await self._settle(asyncio.shield(self._retry(msg, job_id, f"internal error: {exc!r}")), msg)

    async def _settle(self, ending: asyncio.Future[None], msg: Msg) -> None:
        """Record an unhappy ending; if even that fails, leave the message to redelivery."""
        try:
            await ending
        except (NatsError, JetscribeError, TimeoutError, OSError) as exc:
            log.warning(
                "could not record the outcome of a job (subject %s): %r; it will be redelivered", msg.subject, exc
            )

    # Claiming -----------------------------------------------------------------------------------

    async def _run(
        self,
        msg: Msg,
        message: JobMessage,
        slot: _Slot,
        abort: AbortSignal,
        on_engine: Callable[[], None],
    ) -> None:
        job_id = message.job_id
        model = slot.engine.name
        await ensure_record(self._store, message)
        if message.model is not None and message.model != model:
            # A producer published straight onto another model's subject: running it here would give the job a
            # model it did not ask for.
            raise UnsupportedJobError(
                f"the job asks for model {message.model!r} but was published on {msg.subject}, the subject of model "
                f"{model!r}: publish it on {names.model_jobs_subject(message.model, message.tenant)} or on "
                f"{names.JOBS_SUBJECT}"
            )
        current = await self._store.require(job_id)
        if current.record.status == "diarizing" and current.record.transcript_object is not None:
            # Transcribed before, and this delivery not acked (a crash after the hand-off): hand off again, once.
            await self._hand_to_diarization(message, current.record.transcript_object)
            await msg.ack_sync()
            return
        now = utcnow()

        def claim(record: JobRecord) -> JobRecord:
            return msgspec.structs.replace(
                record,
                status="running",
                started_at=now,
                worker_id=self._worker_id,
                model=model,
                engine=slot.engine.kind,
                compute_type=slot.engine.compute_type,
                attempts=record.attempts + 1,
                progress=0,
            )

        claimed = await self._store.transition(job_id, _unless_over(now, claim))
        if claimed.record.is_terminal:
            # Cancelled while queued, or a stale redelivery of a finished job: make sure its event
            # went out (deduplicated), then let the message go.
            await publish_terminal(self._js, claimed.record)
            await msg.ack_sync()
            return
        vad = message.options.vad if message.options.vad is not None else self._settings.vad
        request = DecodeRequest(language=message.language, task=message.task, options=message.options, vad=vad)
        slot.engine.check(request)
        transcription, timings = await self._transcribe(
            msg, message, slot, request, abort, on_engine, attempt=claimed.record.attempts
        )
        await asyncio.shield(self._complete(msg, message, model, transcription, timings))

    async def _keep_alive(self, msg: Msg, job_id: str, abort: AbortSignal) -> None:
        """Tell JetStream the job is alive; pick up a cancel recorded in KV while we are at it."""
        while True:
            await asyncio.sleep(self._settings.in_progress_interval_s)
            try:
                await msg.in_progress()
                current = await self._store.get(job_id)
            except (NatsError, TimeoutError) as exc:
                log.warning("heartbeat of job %s failed: %r", job_id, exc)
                continue
            if current is not None and (current.record.cancel_requested or current.record.is_terminal):
                abort.trigger("cancelled")

    # Working ------------------------------------------------------------------------------------

    async def _transcribe(
        self,
        msg: Msg,
        message: JobMessage,
        slot: _Slot,
        request: DecodeRequest,
        abort: AbortSignal,
        on_engine: Callable[[], None],
        *,
        attempt: int,
    ) -> tuple[Transcription, JobTimings]:
        settings = self._settings
        reporter = ProgressReporter(
            self._nc, self._store, message.job_id, self._worker_id, abort, seq_start=first_seq(attempt)
        )
        deadline = JobDeadline(settings.job_timeout_s, settings.job_timeout_per_audio_s)
        async with (
            _background(self._keep_alive(msg, message.job_id, abort)),
            _background(deadline.watch(abort)),
        ):
            publishing = asyncio.create_task(reporter.run())
            try:
                clock = _Stopwatch()
                reporter.stage("fetching", 0)
                deadline.stage = "fetching the audio"
                async with self._temp_file(message.job_id) as path:
                    size = await abort.guard(self._fetch(message, path))
                    fetch_s = clock.lap()
                    if size == 0:
                        raise BadAudioError("the audio file is empty (0 bytes)")
                    reporter.stage("decoding", 2)
                    deadline.stage = "decoding the audio"
                    expected_s = await abort.guard(probe_duration(path, max_audio_s=settings.max_audio_s))
                    deadline.audio_s = expected_s or 0.0
                    samples = await abort.guard(
                        decode_file(
                            path,
                            max_audio_s=settings.max_audio_s,
                            expected_s=expected_s,
                            budget=slot.budget,
                            waiting=deadline.paused,
                            audio_stream=message.options.audio_stream,
                        )
                    )
                    decode_s = clock.lap()
                try:
                    deadline.audio_s = samples.size / SAMPLE_RATE
                    # The audio is ready; the engine may still be busy with the slot's previous job.
                    with deadline.paused():
                        await abort.guard(slot.engine.lock.acquire())
                    wait_s = clock.lap()
                    try:
                        on_engine()
                        reporter.stage("transcribing", 10)
                        deadline.stage = "transcribing"
                        hooks = Hooks(
                            on_progress=reporter.whisper_progress, on_segment=reporter.new_segment, abort=abort
                        )
                        transcription = await slot.engine.run(samples, request, hooks)
                    finally:
                        slot.engine.lock.release()
                finally:
                    slot.budget.give_back(samples.nbytes)
                timings = JobTimings(fetch_s=fetch_s, decode_s=decode_s, wait_s=wait_s, transcribe_s=clock.lap())
                reporter.stage("finishing", 99)
            finally:
                reporter.close()
                await publishing
        abort.check()
        return transcription, timings

    def _new_temp_file(self, job_id: str) -> Path:
        directory = self._settings.work_dir
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"jetscribe-{job_id}-", suffix=".audio", dir=directory)
        os.close(fd)
        return Path(name)

    @contextlib.asynccontextmanager
    async def _temp_file(self, job_id: str) -> AsyncIterator[Path]:
        """A temp file for the job's audio, removed afterwards; file system calls run in a thread."""
        path = await asyncio.to_thread(self._new_temp_file, job_id)
        try:
            yield path
        finally:
            await asyncio.shield(asyncio.to_thread(path.unlink, missing_ok=True))

    async def _fetch(self, message: JobMessage, path: Path) -> int:
        dest = await asyncio.to_thread(path.open, "wb")
        try:
            if message.audio_object is not None:
                return await fetch_object(
                    self._js, message.audio_object, dest, timeout_s=self._settings.fetch_timeout_s
                )
            assert message.audio_url is not None
            return await self._downloader.download(message.audio_url, dest)
        finally:
            await asyncio.shield(asyncio.to_thread(dest.close))

    # Endings ------------------------------------------------------------------------------------

    async def _complete(
        self, msg: Msg, message: JobMessage, model: str, transcription: Transcription, timings: JobTimings
    ) -> None:
        """Record the transcript: the job is done, or (with `diarize`) handed to the diarization stage."""
        job_id = message.job_id
        diarize = message.options.diarize
        transcript = await self._store.put_transcript(job_id, transcription.segments)
        now = utcnow()

        def finish(record: JobRecord) -> JobRecord:
            return msgspec.structs.replace(
                record,
                status="diarizing" if diarize else "done",
                progress=0 if diarize else 100,
                error=None,
                duration_secs=transcription.duration_secs,
                detected_language=transcription.language,
                language_probability=transcription.language_probability,
                completed_at=None if diarize else now,
                model=model,
                transcript_object=transcript,
                timings=timings,
            )

        after = await self._store.transition(job_id, _unless_over(now, finish))
        if after.record.transcript_object != transcript:
            # Cancelled (or finished elsewhere) at the last moment: the result is discarded.
            await self._store.delete_transcript(transcript)
        elif after.record.worker_id == self._worker_id and after.record.status in ("done", "diarizing"):
            self.jobs_done[model] += 1
        if after.record.status == "diarizing":
            # Published after the record says `diarizing`, so a diarization worker never finds it `running`; the
            # message id makes a publish repeated after a crash (this delivery redelivered) count once.
            await self._hand_to_diarization(message, transcript)
        else:
            await publish_terminal(self._js, after.record)
        await msg.ack_sync()

    async def _hand_to_diarization(self, message: JobMessage, transcript: str) -> None:
        """Queue a transcribed job for the diarization stage (deduplicated per job by its message id)."""
        handoff = DiarizationMessage(job=message, transcript_object=transcript)
        await self._js.publish(
            names.diarize_subject(message.tenant),
            encode(handoff),
            headers={names.MSG_ID_HEADER: names.diarize_msg_id(message.job_id)},
        )
        log.info("job %s transcribed; handed to the diarization stage", message.job_id)

    async def _cancel(self, msg: Msg, job_id: str) -> None:
        now = utcnow()

        def cancel(record: JobRecord) -> JobRecord | None:
            if record.is_terminal:
                return None
            return msgspec.structs.replace(
                record, status="cancelled", cancel_requested=True, completed_at=now, error=CANCELLED
            )

        after = await self._store.transition(job_id, cancel)
        await publish_terminal(self._js, after.record)
        await msg.ack_sync()
        log.info("job %s cancelled", job_id)

    async def _hand_back(self, msg: Msg, job_id: str) -> None:
        """Queue the job again without spending a delivery: publish its message anew on its model's subject, then ack
        this one.

        The new message id is unique to this delivery (its stream sequence), so a hand-back that is
        itself retried after a crash is stored once. Should the publish fail (e.g. a full queue),
        a nak hands the job back at the cost of one delivery.
        """

        def requeue(record: JobRecord) -> JobRecord | None:
            if record.is_terminal or record.worker_id != self._worker_id:
                return None
            return msgspec.structs.replace(record, status="queued", progress=0)

        await self._store.transition(job_id, requeue)
        msg_id = names.handback_msg_id(job_id, msg.metadata.sequence.stream)
        try:
            # Onto the subject it came from: its model's, so it goes back to that model's workers.
            await self._js.publish(msg.subject, msg.data, headers={names.MSG_ID_HEADER: msg_id})
        except (NatsError, TimeoutError) as exc:
            log.warning("job %s: publishing it again failed (%r); handing it back with a nak", job_id, exc)
            await msg.nak()
            return
        await msg.ack_sync()
        log.info("job %s handed back (published again as %s)", job_id, msg_id)

    async def _fail(self, msg: Msg, job_id: str, error: str) -> None:
        await fail_job(self._store, self._js, job_id, error)
        await msg.term()

    def retry_delay_s(self, msg: Msg) -> float:
        """Back-off before the next delivery: doubles with each attempt."""
        delivered = msg.metadata.num_delivered or 1
        return float(self._settings.retry_delay_s * 2 ** (delivered - 1))

    async def _retry(self, msg: Msg, job_id: str | None, error: str) -> None:
        if job_id is not None:

            def note(record: JobRecord) -> JobRecord | None:
                if record.is_terminal:
                    return None
                return msgspec.structs.replace(record, status="queued", error=error, progress=0)

            # The dead-letter handler quotes this error if the deliveries run out.
            with contextlib.suppress(JetscribeError):
                await self._store.transition(job_id, note)
        await msg.nak(delay=self.retry_delay_s(msg))
