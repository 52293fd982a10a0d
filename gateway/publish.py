"""Publishing to JetStream the way the gateway needs it: deduplicated by message id, retried through outages."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

from gateway.errors import UnavailableError
from schemas import names

log = logging.getLogger(__name__)

PUBLISH_ATTEMPTS: Final = 5
PUBLISH_TIMEOUT_S: Final = 5.0
FIRST_RETRY_DELAY_S: Final = 0.25
STREAM_FULL_ERR: Final = 10077
FINAL_ERR_CODES: Final = frozenset({STREAM_FULL_ERR})
RETRYABLE: Final = (NatsTimeoutError, TimeoutError, NoStreamResponseError, NoRespondersError, ServiceUnavailableError)


async def publish_durably(js: JetStreamContext, subject: str, payload: bytes, *, msg_id: str) -> None:
    """Publish with `Nats-Msg-Id = msg_id`; a timeout is retried with the same id, so the stream stores it once.

    Raises UnavailableError when every attempt timed out, and lets JetStream's own refusals
    (`APIError`, e.g. a full stream) through for the caller to translate.
    """
    delay_s = FIRST_RETRY_DELAY_S
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            await js.publish(subject, payload, timeout=PUBLISH_TIMEOUT_S, headers={names.MSG_ID_HEADER: msg_id})
            return
        except RETRYABLE as exc:
            # A full stream answers 503 too, but waiting a second will not empty it.
            if isinstance(exc, APIError) and exc.err_code in FINAL_ERR_CODES:
                raise
            if attempt == PUBLISH_ATTEMPTS:
                raise UnavailableError(
                    f"NATS did not acknowledge the message after {PUBLISH_ATTEMPTS} attempts; try again later"
                ) from exc
            log.warning("publish of %s on %s failed (attempt %d: %r); retrying", msg_id, subject, attempt, exc)
            await asyncio.sleep(delay_s)
            delay_s *= 2
