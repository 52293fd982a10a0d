"""The dead-letter path: jobs whose deliveries ran out end `failed` with the reason (in the transcription stage,
or in the diarization stage: each has its own consumer of its own advisories).

A message that exhausts `max_deliver` stays in the work-queue stream and nats-server only emits a
MAX_DELIVERIES advisory, which the DLQ stream captures. One durable consumer, shared by every
worker, reads those advisories, fails the job (quoting the last error its record holds), publishes
`failed` and deletes the original message.

Only MAX_DELIVERIES advisories are consumed. The other two subjects of the DLQ stream stay there as
an audit trail: a MSG_TERMINATED advisory follows a term() the worker sends only after it has
failed the job itself (and the terminated message is already gone from the work queue), and an
invalid-job notice is published by the worker that failed that job.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import msgspec
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from jetscribe.errors import JetscribeError
from jetscribe.jobstore import JobStore
from jetscribe.stage.outcome import fail_job, readable_job_id, release_audio
from schemas import JobMessage, SchemaError, names
from schemas.codec import decode_diarization_message, decode_job_message

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S: Final = 1.0
ACK_WAIT_S: Final = 30.0
RETRY_DELAY_S: Final = 2.0
NO_ERROR_RECORDED: Final = "no worker finished it in time (workers crashed or stalled before acknowledging it)"


class MaxDeliveriesAdvisory(msgspec.Struct):
    """The part of nats-server's `io.nats.jetstream.advisory.v1.max_deliver` advisory we use."""

    stream: str
    stream_seq: int
    deliveries: int


_advisory: Final = msgspec.json.Decoder(MaxDeliveriesAdvisory)


def diarize_deadletter_config() -> api.ConsumerConfig:
    """The dead-letter consumer of the diarization stage, shared by every diarization worker: it fails jobs whose
    diarization deliveries ran out."""
    return api.ConsumerConfig(
        durable_name=names.DIARIZE_DEADLETTER_CONSUMER,
        description="Fails jobs whose diarization deliveries ran out",
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subject=names.DIARIZE_MAX_DELIVERIES_ADVISORY,
        ack_wait=ACK_WAIT_S,
    )


def _job_message(stream: str, data: bytes) -> JobMessage:
    """The job message inside a message of `stream`; raises SchemaError."""
    if stream == names.DIARIZE_STREAM:
        return decode_diarization_message(data).job
    return decode_job_message(data)


def consumer_config() -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=names.DEADLETTER_CONSUMER,
        description="Fails jobs whose deliveries ran out",
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subject=names.MAX_DELIVERIES_ADVISORY,
        ack_wait=ACK_WAIT_S,
    )


class DeadLetterHandler:
    """Consumes MAX_DELIVERIES advisories until `stopping` is set."""

    def __init__(
        self,
        js: JetStreamContext,
        store: JobStore,
        *,
        audio: ObjectStore | None = None,
        config: api.ConsumerConfig | None = None,
    ) -> None:
        """`audio`: the bucket to delete a failed job's audio from; None keeps it (`keep_audio`). `config`: the
        consumer of the advisories (default `consumer_config()`, the jobs stream's; `diarize_deadletter_config()`
        for the diarization stage's)."""
        self._config = config or consumer_config()
        self._js = js
        self._store = store
        self._audio = audio

    async def run(self, stopping: asyncio.Event) -> None:
        await self._js.add_consumer(names.DEADLETTER_STREAM, self._config)
        assert self._config.durable_name is not None
        subscription = await self._js.pull_subscribe_bind(self._config.durable_name, names.DEADLETTER_STREAM)
        try:
            while not stopping.is_set():
                try:
                    messages = await subscription.fetch(1, timeout=FETCH_TIMEOUT_S)
                except TimeoutError:
                    continue
                except NatsError as exc:
                    log.warning("dead-letter fetch failed: %r", exc)
                    await asyncio.sleep(RETRY_DELAY_S)
                    continue
                for message in messages:
                    try:
                        await self.handle(message.data)
                    except (NatsError, JetscribeError, TimeoutError) as exc:
                        log.warning("dead letter not handled yet: %r", exc)
                        await message.nak(delay=RETRY_DELAY_S)
                    else:
                        await message.ack()
        finally:
            # Unsubscribe first: otherwise draining the connection waits out its timeout (see notes).
            await subscription.unsubscribe()

    async def handle(self, data: bytes) -> None:
        """Fail the job of one MAX_DELIVERIES advisory and remove its message from the jobs stream."""
        try:
            advisory = _advisory.decode(data)
        except msgspec.DecodeError as exc:
            log.error("unreadable MAX_DELIVERIES advisory dropped: %s", exc)
            return
        try:
            original = await self._js.get_msg(advisory.stream, advisory.stream_seq)
        except NotFoundError:
            return  # handled before (a redelivered advisory) or deleted by someone else
        message: JobMessage | None
        try:
            message = _job_message(advisory.stream, original.data or b"")
            job_id: str | None = message.job_id
        except SchemaError:
            message, job_id = None, readable_job_id(original.data or b"")
        if job_id is not None:
            found = await self._store.get(job_id)
            last_error = (found.record.error if found else None) or NO_ERROR_RECORDED
            reason = f"gave up after {advisory.deliveries} deliveries: {last_error}"
            if await fail_job(self._store, self._js, job_id, reason, message=message) is not None:
                log.warning("job %s failed: %s", job_id, reason)
            if self._audio is not None and message is not None and message.audio_object is not None:
                await release_audio(self._store, self._audio, message)
        await self._js.delete_msg(advisory.stream, advisory.stream_seq)
