"""Webhook delivery from the events stream: durable, shared by every gateway, retried through the broker.

All gateways pull from one durable consumer on the events stream, so each terminal event is in the
hands of exactly one of them at a time. An attempt that fails is `nak`ed with the next back-off as
its delay: the wait lives in the broker, not in a sleeping task, so a gateway that dies during the
back-off loses nothing — the event comes back to whichever gateway is running when the delay ends.
The attempt count lives in the job's `WebhookState` in KV, which is also what the job JSON shows.
Each gateway bounds its attempts in all and per target host (`gateway.webhooks.hosts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Literal, Self
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from gateway.webhooks.attempt import Outcome, given_up, post_webhook, recorded_attempt
from gateway.webhooks.hosts import HostSlots, target_host
from gateway.webhooks.signing import signing_key, webhook_headers
from jetscribe.config import Settings
from jetscribe.errors import JobNotFoundError, TranscriptMissingError
from jetscribe.jobstore import JobStore
from jetscribe.netguard import guarded_connector
from schemas import JobRecord, SchemaError, TerminalEvent, encode, names
from schemas.codec import decode_terminal_event

log = logging.getLogger(__name__)

ACK_MARGIN_S: Final = 30.0
"""Added to the per-attempt timeout for `ack_wait`: room for the KV and transcript reads around the POST."""
MAX_ACK_PENDING: Final = 10_000
"""Events waiting out a back-off count as pending: this many receivers can be down at once."""
FETCH_TIMEOUT_S: Final = 5.0
BROKER_PAUSE_S: Final = 1.0
ERROR_RETRY_S: Final = 5.0
"""Back-off after an unexpected error, times the number of deliveries so far, up to `MAX_ERROR_RETRY_S`."""
MAX_ERROR_RETRY_S: Final = 300.0


def for_logs(url: str) -> str:
    """`url` without its query, fragment and user info (`https://host/hook?…`): receivers put tokens there
    (docs/webhooks.md suggests it for unsigned webhooks), and logs are read by more people than the job's tenant."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return f"{shown}?…" if parts.query else shown


@dataclass(frozen=True, slots=True)
class Verdict:
    """How to settle an event message with the broker."""

    action: Literal["ack", "nak", "term"]
    delay_s: float = 0.0


ACK: Final = Verdict("ack")
TERM: Final = Verdict("term")


def consumer_config(settings: Settings) -> api.ConsumerConfig:
    """The durable webhooks consumer: explicit ack, no broker-side delivery limit (the schedule is ours)."""
    return api.ConsumerConfig(
        durable_name=names.WEBHOOKS_CONSUMER,
        description="Webhook delivery, shared by all gateways",
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=settings.webhook_timeout_s + ACK_MARGIN_S,
        max_deliver=-1,
        max_ack_pending=MAX_ACK_PENDING,
    )


def webhook_id(msg: Msg, event: TerminalEvent) -> str:
    """Stable across every attempt for one event, so receivers can drop repeats."""
    return (msg.headers or {}).get(names.MSG_ID_HEADER) or f"{event.job.id}:{event.type}"


class WebhookDelivery:
    """Delivers every terminal event of a job with a `webhook_url`, signed, with retries.

    An async context manager: entering creates (or updates) the durable consumer and starts pulling;
    leaving stops pulling, lets attempts in flight finish for up to `shutdown_grace_s`, then
    cancels the rest and `nak`s their events so another gateway takes them at once.
    """

    def __init__(self, settings: Settings, js: JetStreamContext, job_store: JobStore) -> None:
        self._settings = settings
        self._js = js
        self._store = job_store
        self._key = signing_key(settings.webhook_secret) if settings.webhook_secret else None
        self._schedule = settings.webhook_retry_schedule_s
        self._ack_wait_s = settings.webhook_timeout_s + ACK_MARGIN_S
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._hosts = HostSlots(settings.webhook_host_concurrency)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._state: Literal["new", "running", "closed"] = "new"
        self._sub: JetStreamContext.PullSubscription | None = None
        self._http: aiohttp.ClientSession | None = None
        self._fetcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"WebhookDelivery is {self._state}; create a new one to start again")
        self._state = "running"
        await self._js.add_consumer(names.EVENTS_STREAM, consumer_config(self._settings))
        self._sub = await self._js.pull_subscribe_bind(durable=names.WEBHOOKS_CONSUMER, stream=names.EVENTS_STREAM)
        self._http = aiohttp.ClientSession(
            connector=guarded_connector(
                self._settings.allow_private_targets, what="webhook_url", limit=self._settings.webhook_concurrency
            ),
            timeout=aiohttp.ClientTimeout(total=self._settings.webhook_timeout_s),
        )
        self._fetcher = asyncio.create_task(self._fetch_loop(), name="webhooks-fetch")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._state = "closed"
        # Order: stop pulling, and unsubscribe before anything is nak'ed: the broker would hand a
        # nak'ed event straight back to our last pull request while its inbox still has interest.
        # Then give attempts in flight their grace, and cancel (and nak) the rest.
        assert self._fetcher is not None and self._sub is not None and self._http is not None
        self._fetcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._fetcher
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()
        try:
            if self._deliveries:
                await asyncio.wait(self._deliveries, timeout=self._settings.shutdown_grace_s)
        finally:
            remaining = list(self._deliveries)
            for task in remaining:
                task.cancel()
            await asyncio.gather(*remaining, return_exceptions=True)
            await self._http.close()

    async def _fetch_loop(self) -> None:
        assert self._sub is not None
        while True:
            await self._slots.acquire()
            try:
                msgs = await self._sub.fetch(1, timeout=FETCH_TIMEOUT_S)
            except TimeoutError:
                self._slots.release()
                continue
            except Exception as exc:
                self._slots.release()
                log.warning("fetching webhook events failed (%s); retrying in %g s", exc, BROKER_PAUSE_S)
                await asyncio.sleep(BROKER_PAUSE_S)
                continue
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._deliver(msgs[0]), name=f"webhook {msgs[0].subject}")
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, msg: Msg) -> None:
        try:
            try:
                async with self._keep_alive(msg):
                    verdict = await self._process(msg)
            except asyncio.CancelledError:
                # Shutting down mid-attempt: hand the event to another gateway now, uncounted.
                await asyncio.shield(_settle(msg, Verdict("nak")))
                raise
            except Exception:
                # Not the receiver's fault (KV unreachable, say), so not counted as an attempt; the wait
                # grows with each delivery so that a persistent fault does not spin.
                delay_s = min(ERROR_RETRY_S * msg.metadata.num_delivered, MAX_ERROR_RETRY_S)
                log.exception("webhook for %s failed unexpectedly; retrying in %g s", msg.subject, delay_s)
                verdict = Verdict("nak", delay_s)
            await asyncio.shield(_settle(msg, verdict))
        finally:
            self._slots.release()

    @contextlib.asynccontextmanager
    async def _keep_alive(self, msg: Msg) -> AsyncIterator[None]:
        """Tell the broker every third of `ack_wait` that this event is still being worked on."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self._ack_wait_s / 3)
                with contextlib.suppress(Exception):
                    await msg.in_progress()

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _process(self, msg: Msg) -> Verdict:
        try:
            event = decode_terminal_event(msg.data)
        except SchemaError as exc:
            log.error("dropping an event on %s that cannot be decoded: %s", msg.subject, exc)
            return TERM
        job_id = event.job.id
        found = await self._store.get(job_id)
        if found is None:
            log.warning("no record for job %s (expired or deleted): its webhook is not sent", job_id)
            return ACK
        record = found.record
        state = record.webhook
        if record.webhook_url is None or (state is not None and (state.delivered_at or state.exhausted)):
            return ACK
        host = target_host(record.webhook_url)
        if host is None:  # not an http(s) URL: the attempt refuses it without a request
            return await self._attempt(msg, event, record)
        started = self._hosts.try_take(host)
        if started is None:
            delay_s = self._hosts.deferral_s(host)
            log.debug("webhook for %s: %s is at its limit of attempts; deferred %.2f s", job_id, host, delay_s)
            return Verdict("nak", delay_s)
        try:
            return await self._attempt(msg, event, record)
        finally:
            self._hosts.give_back(host, started)

    async def _attempt(self, msg: Msg, event: TerminalEvent, record: JobRecord) -> Verdict:
        """One POST of `record`'s job to its webhook URL, and its outcome recorded."""
        assert record.webhook_url is not None
        try:
            body = await self._body(record)
        except TranscriptMissingError as exc:
            reason = f"not sent: {exc}"
            await self._store.transition(record.id, lambda current: given_up(current, reason))
            log.error("webhook for job %s to %s %s", record.id, for_logs(record.webhook_url), reason)
            return ACK
        headers = webhook_headers(self._key, webhook_id(msg, event), int(time.time()), body)
        outcome = await post_webhook(self._http_session, record.webhook_url, body, headers)
        return await self._record(record.id, outcome)

    async def _body(self, record: JobRecord) -> bytes:
        segments = await self._store.get_transcript(record.transcript_object) if record.transcript_object else None
        return encode(record.to_job(segments))

    async def _record(self, job_id: str, outcome: Outcome) -> Verdict:
        max_attempts = len(self._schedule) + 1
        now = datetime.now(UTC)
        try:
            updated = await self._store.transition(
                job_id, lambda current: recorded_attempt(current, outcome, max_attempts=max_attempts, now=now)
            )
        except JobNotFoundError:
            log.warning("job %s was deleted during its webhook attempt; nothing more is sent", job_id)
            return ACK
        state = updated.record.webhook
        assert state is not None
        if state.delivered_at is not None:
            return ACK
        if state.exhausted:
            log.error(
                "webhook for job %s to %s given up after %d attempts: %s",
                job_id,
                for_logs(state.url),
                state.attempts,
                state.last_error,
            )
            return ACK
        delay_s = self._schedule[state.attempts - 1]
        log.info("webhook for job %s attempt %d: %s; retrying in %g s", job_id, state.attempts, outcome.error, delay_s)
        return Verdict("nak", delay_s)

    @property
    def _http_session(self) -> aiohttp.ClientSession:
        assert self._http is not None
        return self._http


async def _settle(msg: Msg, verdict: Verdict) -> None:
    """Ack, nak (with delay) or term; a failure only means the broker redelivers after `ack_wait`."""
    try:
        if verdict.action == "ack":
            await msg.ack_sync()
        elif verdict.action == "nak":
            await msg.nak(delay=verdict.delay_s or None)
        else:
            await msg.term()
    except Exception as exc:
        log.warning("could not %s %s (%s); the broker will redeliver it", verdict.action, msg.subject, exc)
