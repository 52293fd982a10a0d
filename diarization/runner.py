"""Running one diarization message from delivery to ack: claim, fetch and decode the audio, diarize, complete.

The endings follow the whisper worker's (`worker.runner`): done / cancelled / failed (permanent) → recorded,
terminal event published, ack (term for failures); a transient fault → last error kept in the record, nak with
back-off (the dead-letter handler fails the job once deliveries run out); hand-back on shutdown → nak at once, so
another diarization worker takes the job. The job stays `diarizing` until it ends; its audio is released only then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, Final

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.object_store import ObjectStore

from diarization.labels import labelled_segments, speaker_times
from diarizer import DiarizationCancelledError, Diarizer, DiarizerError, SpeakerCount
from jetscribe.config import Settings
from jetscribe.errors import JetscribeError
from jetscribe.jobstore import JobStore
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import Samples, decode_file, probe_duration
from jetscribe.stage.errors import BadAudioError, JobAbortedError, PermanentError, RetryableError
from jetscribe.stage.fetch import AudioDownloader, fetch_object
from jetscribe.stage.outcome import fail_job, publish_terminal, release_audio, utcnow
from jetscribe.stage.progress import ProgressReporter, first_seq
from schemas import DiarizationMessage, JobRecord, SchemaError, Segment, SpeakerTime, names
from schemas.codec import decode_diarization_message

log = logging.getLogger(__name__)

CANCELLED: Final = "cancelled by request"


def _job_id_of(data: bytes) -> str | None:
    """The job id of a diarization message that failed validation, if it has a usable one."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    job = raw.get("job") if isinstance(raw, dict) else None
    job_id = job.get("job_id") if isinstance(job, dict) else None
    return job_id if isinstance(job_id, str) and names.JOB_ID_RE.match(job_id) else None


class DiarizationRunner:
    """Everything one diarization worker needs to run diarization messages; one call to `run` per delivery."""

    def __init__(
        self,
        settings: Settings,
        nc: Client,
        store: JobStore,
        audio: ObjectStore,
        downloader: AudioDownloader,
        diarizer: Diarizer,
        *,
        worker_id: str,
    ) -> None:
        self._settings = settings
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._store = store
        self._audio = audio
        self._downloader = downloader
        self._diarizer = diarizer
        self._worker_id = worker_id
        self.running: dict[str, AbortSignal] = {}
        self.jobs_done = 0

    async def run(self, msg: Msg) -> None:
        """Take one delivery to its end; never raises for anything a job can do."""
        try:
            handoff = decode_diarization_message(msg.data)
        except SchemaError as exc:
            await self._settle(asyncio.shield(self._reject(msg, exc)))
            return
        job_id = handoff.job.job_id
        abort = AbortSignal()
        self.running[job_id] = abort
        try:
            await self._guarded(msg, job_id, abort, self._run(msg, handoff, abort))
        finally:
            if self.running.get(job_id) is abort:
                del self.running[job_id]
        if handoff.job.audio_object is not None and not self._settings.keep_audio:
            await release_audio(self._store, self._audio, handoff.job)

    async def _reject(self, msg: Msg, exc: SchemaError) -> None:
        job_id = _job_id_of(msg.data)
        if job_id is not None:
            await fail_job(self._store, self._js, job_id, f"the diarization message is invalid: {exc}")
        await msg.term()
        log.warning("terminated an invalid diarization message (job id %s): %s", job_id, exc)

    async def _guarded(self, msg: Msg, job_id: str, abort: AbortSignal, work: Coroutine[Any, Any, None]) -> None:
        """Run `work`, mapping what it raises onto the job and the message."""
        try:
            await work
        except (JobAbortedError, DiarizationCancelledError):
            if abort.reason == "handback":
                log.info("job %s handed back: another diarization worker takes it", job_id)
                await self._settle(asyncio.shield(msg.nak()))
            else:
                await self._settle(asyncio.shield(self._cancel(msg, job_id)))
        except (PermanentError, DiarizerError) as exc:
            log.info("job %s failed in diarization: %s", job_id, exc)
            await self._settle(asyncio.shield(self._fail(msg, job_id, f"diarization failed: {exc}")))
        except (RetryableError, NatsError, JetscribeError, TimeoutError, OSError) as exc:
            log.warning("diarization of job %s will be retried: %s", job_id, exc)
            await self._settle(asyncio.shield(self._retry(msg, job_id, str(exc) or repr(exc))))
        except Exception as exc:
            log.exception("diarization of job %s hit an unexpected error; it will be retried", job_id)
            await self._settle(asyncio.shield(self._retry(msg, job_id, f"internal error: {exc!r}")))

    @staticmethod
    async def _settle(ending: asyncio.Future[None]) -> None:
        """Record an unhappy ending; if even that fails, leave the message to redelivery."""
        try:
            await ending
        except (NatsError, JetscribeError, TimeoutError, OSError) as exc:
            log.warning("could not record the outcome of a diarization: %r; it will be redelivered", exc)

    # Claiming -----------------------------------------------------------------------------------

    async def _run(self, msg: Msg, handoff: DiarizationMessage, abort: AbortSignal) -> None:
        job_id = handoff.job.job_id
        now = utcnow()

        def claim(record: JobRecord) -> JobRecord | None:
            if record.is_terminal or record.status != "diarizing":
                return None
            if record.cancel_requested:
                return msgspec.structs.replace(record, status="cancelled", completed_at=now, error=CANCELLED)
            return msgspec.structs.replace(record, worker_id=self._worker_id, attempts=record.attempts + 1, progress=0)

        claimed = (await self._store.transition(job_id, claim)).record
        if claimed.is_terminal:
            # Cancelled while waiting, or a stale redelivery of a finished job: its event (deduplicated), then ack.
            await publish_terminal(self._js, claimed)
            await msg.ack_sync()
            return
        if claimed.status != "diarizing":
            raise RetryableError(f"job {job_id} is {claimed.status}, not transcribed yet")
        reporter = ProgressReporter(
            self._nc, self._store, job_id, self._worker_id, abort, seq_start=first_seq(claimed.attempts)
        )
        async with _background(self._keep_alive(msg, job_id, abort)):
            publishing = asyncio.create_task(reporter.run())
            try:
                reporter.stage("diarizing", 0)
                samples = await self._samples(handoff, abort)
                transcript = await self._store.get_transcript(handoff.transcript_object)
                options = handoff.job.options
                count = SpeakerCount(options.num_speakers, options.min_speakers, options.max_speakers)
                # Not guarded: the diarizer polls the abort flag and stops, so no thread outlives its job.
                result = await asyncio.to_thread(
                    self._diarizer.diarize,
                    samples,
                    transcript,
                    count,
                    progress=reporter.whisper_progress,
                    cancelled=abort.is_set,
                )
                segments = labelled_segments(result, transcript)
            finally:
                reporter.close()
                await publishing
        abort.check()
        await asyncio.shield(self._complete(msg, job_id, segments, speaker_times(result)))

    async def _keep_alive(self, msg: Msg, job_id: str, abort: AbortSignal) -> None:
        """Tell JetStream the job is alive; pick up a cancel recorded in the job record."""
        while True:
            await asyncio.sleep(self._settings.in_progress_interval_s)
            try:
                await msg.in_progress()
                current = await self._store.get(job_id)
            except (NatsError, TimeoutError) as exc:
                log.warning("heartbeat of diarization of job %s failed: %r", job_id, exc)
                continue
            if current is not None and (current.record.cancel_requested or current.record.is_terminal):
                abort.trigger("cancelled")

    # Working ------------------------------------------------------------------------------------

    async def _samples(self, handoff: DiarizationMessage, abort: AbortSignal) -> Samples:
        """The job's audio as 16 kHz mono float32, decoded as the whisper worker decoded it."""
        settings = self._settings
        job = handoff.job
        async with self._temp_file(job.job_id) as path:
            dest = await asyncio.to_thread(path.open, "wb")
            try:
                if job.audio_object is not None:
                    fetching = fetch_object(self._js, job.audio_object, dest, timeout_s=settings.fetch_timeout_s)
                else:
                    assert job.audio_url is not None
                    fetching = self._downloader.download(job.audio_url, dest)
                size = await abort.guard(fetching)
            finally:
                await asyncio.shield(asyncio.to_thread(dest.close))
            if size == 0:
                raise BadAudioError("the audio file is empty (0 bytes)")
            expected_s = await abort.guard(probe_duration(path, max_audio_s=settings.max_audio_s))
            return await abort.guard(
                decode_file(
                    path,
                    max_audio_s=settings.max_audio_s,
                    expected_s=expected_s,
                    audio_stream=job.options.audio_stream,
                )
            )

    def _new_temp_file(self, job_id: str) -> Path:
        directory = self._settings.work_dir
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"jetscribe-diarize-{job_id}-", suffix=".audio", dir=directory)
        os.close(fd)
        return Path(name)

    @contextlib.asynccontextmanager
    async def _temp_file(self, job_id: str) -> AsyncIterator[Path]:
        path = await asyncio.to_thread(self._new_temp_file, job_id)
        try:
            yield path
        finally:
            await asyncio.shield(asyncio.to_thread(path.unlink, missing_ok=True))

    # Endings ------------------------------------------------------------------------------------

    async def _complete(self, msg: Msg, job_id: str, segments: list[Segment], speakers: list[SpeakerTime]) -> None:
        transcript = await self._store.put_transcript(job_id, segments)
        now = utcnow()

        def finish(record: JobRecord) -> JobRecord | None:
            if record.is_terminal:
                return None
            if record.cancel_requested:
                return msgspec.structs.replace(record, status="cancelled", completed_at=now, error=CANCELLED)
            return msgspec.structs.replace(
                record,
                status="done",
                progress=100,
                error=None,
                completed_at=now,
                transcript_object=transcript,
                speakers=speakers,
            )

        after = await self._store.transition(job_id, finish)
        if after.record.status == "done" and after.record.worker_id == self._worker_id:
            self.jobs_done += 1
        await publish_terminal(self._js, after.record)
        await msg.ack_sync()

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
        log.info("job %s cancelled during diarization", job_id)

    async def _fail(self, msg: Msg, job_id: str, error: str) -> None:
        await fail_job(self._store, self._js, job_id, error)
        await msg.term()

    async def _retry(self, msg: Msg, job_id: str, error: str) -> None:
        def note(record: JobRecord) -> JobRecord | None:
            if record.is_terminal:
                return None
            return msgspec.structs.replace(record, error=error, progress=0)

        # The dead-letter handler quotes this error if the deliveries run out.
        with contextlib.suppress(JetscribeError):
            await self._store.transition(job_id, note)
        delivered = msg.metadata.num_delivered or 1
        await msg.nak(delay=float(self._settings.retry_delay_s * 2 ** (delivered - 1)))


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
