"""The router: moves each job published on `jetscribe.jobs.submit` (the subject that names no model) onto its
model's subject, or fails it when no worker can run it.

Every worker runs one, on the shared `router` consumer. A job goes to the model its `model` names, else to the
service's default model (`JETSCRIBE_DEFAULT_MODEL`, else the first of `WHISPER_MODEL`). When that model is on
offer (`jetscribe.offer`), the router creates the job's record (`queued`, with the model) if it has none,
publishes the message, its `model` filled in, on `jetscribe.jobs.<model token>.default` with
`Nats-Msg-Id: <job_id>.routed.<stream sequence>` (so a routing retried after a crash is stored once), and acks
the original. When it is not, the job fails with the gateway's own 422 message and the original is terminated.
An invalid message is dead-lettered as a slot would; a NATS fault naks it for another try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import msgspec
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from jetscribe.config import Settings
from jetscribe.errors import JetscribeError
from jetscribe.jobstore import JobStore
from jetscribe.offer import OfferReader
from jetscribe.stage.outcome import ensure_record, fail_job, reject_invalid
from schemas import SchemaError, encode, names
from schemas.codec import decode_job_message

log = logging.getLogger(__name__)

BATCH: Final = 64
FETCH_TIMEOUT_S: Final = 1.0
RETRY_DELAY_S: Final = 1.0


class JobRouter:
    """Routes the jobs of `jetscribe.jobs.submit` until the worker stops fetching."""

    def __init__(self, js: JetStreamContext, store: JobStore, offers: OfferReader, settings: Settings) -> None:
        self._js = js
        self._store = store
        self._offers = offers
        self._settings = settings

    async def run(self, stopping: asyncio.Event) -> None:
        """Fetch and route until `stopping` is set; the router consumer must exist (`ensure_consumers`)."""
        subscription = await self._js.pull_subscribe_bind(names.ROUTER_CONSUMER, names.JOBS_STREAM)
        try:
            while not stopping.is_set():
                try:
                    messages = await subscription.fetch(BATCH, timeout=FETCH_TIMEOUT_S)
                except TimeoutError:
                    continue
                except NatsError as exc:
                    log.warning("fetching jobs to route failed: %r", exc)
                    await asyncio.sleep(RETRY_DELAY_S)
                    continue
                for msg in messages:
                    await self.route(msg)
        finally:
            # Unsubscribed first, or draining the connection waits out its timeout (see notes).
            with contextlib.suppress(NatsError):
                await subscription.unsubscribe()

    async def route(self, msg: Msg) -> None:
        """Route one message; a fault leaves it to be delivered again (never raises for what NATS does)."""
        try:
            await self._route(msg)
        except (NatsError, JetscribeError, TimeoutError) as exc:
            log.warning("routing the job message %s failed; it will be routed again: %r", msg.subject, exc)
            with contextlib.suppress(NatsError):
                await msg.nak(delay=RETRY_DELAY_S)

    async def _route(self, msg: Msg) -> None:
        try:
            message = decode_job_message(msg.data)
        except SchemaError as exc:
            await reject_invalid(self._js, self._store, msg, exc)
            return
        model = message.model or self._settings.job_default_model
        routed = msgspec.structs.replace(message, model=model)
        reason, _ = await self._offers.refusal(model, message.language, message.options.languages or ())
        if reason is not None:
            if await fail_job(self._store, self._js, message.job_id, reason, message=routed) is not None:
                log.info("job %s failed: %s", message.job_id, reason)
            await msg.term()
            return
        await ensure_record(self._store, routed)
        msg_id = names.routed_msg_id(message.job_id, msg.metadata.sequence.stream)
        subject = names.model_jobs_subject(model, message.tenant)
        await self._js.publish(subject, encode(routed), headers={names.MSG_ID_HEADER: msg_id})
        await msg.ack_sync()
        log.info("job %s routed to model %s", message.job_id, model)
