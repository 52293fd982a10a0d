"""How a job's end is recorded: the compare-and-set to a terminal state, then the terminal event.

Events carry `Nats-Msg-Id: <job_id>:<kind>`, so publishing one again (after a crash between the
KV write and the ack, or on a stale redelivery) is deduplicated by the events stream. A job message
that fails validation ends here too (`reject_invalid`), whether a slot or the router received it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Final

import msgspec
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import ObjectNotFoundError
from nats.js.object_store import ObjectStore

from jetscribe.jobstore import JobStore, Versioned
from jetscribe.stage.errors import RetryableError
from schemas import InvalidJobNotice, JobMessage, JobRecord, SchemaError, TerminalEvent, encode, names
from schemas.names import EventKind

log = logging.getLogger(__name__)

PUBLISH_ATTEMPTS: Final = 4
PUBLISH_RETRY_S: Final = 0.5
MAX_NOTICE_PAYLOAD: Final = 64 * 1024
EVENT_KINDS: Final[dict[str, EventKind]] = {"done": "completed", "failed": "failed", "cancelled": "cancelled"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def readable_job_id(data: bytes) -> str | None:
    """The job id of a message that failed validation, if it has a usable one."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    job_id = raw.get("job_id") if isinstance(raw, dict) else None
    return job_id if isinstance(job_id, str) and names.JOB_ID_RE.match(job_id) else None


async def ensure_record(store: JobStore, message: JobMessage) -> Versioned:
    """The job's record, created (status queued) if the job never passed a gateway."""
    found = await store.get(message.job_id)
    if found is not None:
        return found
    created = await store.create(JobRecord.queued(message, created_at=message.submitted_at or utcnow()))
    return created or await store.require(message.job_id)


async def publish_terminal(js: JetStreamContext, record: JobRecord) -> None:
    """Publish the terminal event of a finished `record` on the events stream, retrying brief outages."""
    kind = EVENT_KINDS[record.status]
    event = TerminalEvent(
        type=kind,
        job=record.to_job(),
        transcript_object=record.transcript_object,
        occurred_at=record.completed_at or utcnow(),
    )
    headers = {names.MSG_ID_HEADER: f"{record.id}:{kind}"}
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            await js.publish(names.event_subject(kind, record.id), encode(event), headers=headers)
            return
        except (NatsError, TimeoutError) as exc:
            if attempt == PUBLISH_ATTEMPTS:
                raise RetryableError(f"publishing the {kind} event of job {record.id} failed: {exc!r}") from exc
            log.warning("publishing %s event of %s failed (attempt %d): %r", kind, record.id, attempt, exc)
            await asyncio.sleep(PUBLISH_RETRY_S * attempt)


async def fail_job(
    store: JobStore, js: JetStreamContext, job_id: str, error: str, *, message: JobMessage | None = None
) -> JobRecord | None:
    """Mark the job failed with `error` (creating its record if need be) and publish `failed`.

    A job that already ended keeps its outcome; returns the failed record, or None in that case.
    """
    now = utcnow()
    if await store.get(job_id) is None:
        if message is not None:
            record = JobRecord.queued(message, created_at=message.submitted_at or now)
        else:
            record = JobRecord(id=job_id, status="queued", task="transcribe", language=None, created_at=now)
        await store.create(record)

    def to_failed(record: JobRecord) -> JobRecord | None:
        if record.is_terminal:
            return None
        return msgspec.structs.replace(record, status="failed", error=error, completed_at=now)

    after = await store.transition(job_id, to_failed)
    if after.record.status != "failed" or after.record.error != error:
        return None
    await publish_terminal(js, after.record)
    return after.record


async def release_audio(store: JobStore, audio: ObjectStore, message: JobMessage) -> None:
    """Delete the job's audio object once the job has ended (its transcript or error is what is kept).

    Runs after every delivery; a job that will be retried or was handed back keeps its audio. The
    object expires with the bucket's TTL anyway, so a failure here is only logged.
    """
    assert message.audio_object is not None
    try:
        found = await store.get(message.job_id)
        if found is None or not found.record.is_terminal:
            return
        await audio.delete(message.audio_object)
        log.info("job %s: deleted its audio object %s", message.job_id, message.audio_object)
    except ObjectNotFoundError:
        pass
    except (NatsError, TimeoutError) as exc:
        log.warning("job %s: audio object %s not deleted: %r", message.job_id, message.audio_object, exc)


async def reject_invalid(js: JetStreamContext, store: JobStore, msg: Msg, exc: SchemaError) -> None:
    """Dead-letter a job message that failed validation: an invalid-job notice, the job (if its id can be read)
    failed with the reason, the message terminated."""
    job_id = readable_job_id(msg.data)
    notice = InvalidJobNotice(
        job_id=job_id,
        reason=str(exc),
        payload=msg.data[:MAX_NOTICE_PAYLOAD].decode("utf-8", "replace"),
        received_at=utcnow(),
    )
    await js.publish(names.INVALID_JOB_SUBJECT, encode(notice))
    if job_id is not None:
        await fail_job(store, js, job_id, f"the job message is invalid: {exc}")
    await msg.term()
    log.warning("dead-lettered an invalid job message (job id %s): %s", job_id, exc)
