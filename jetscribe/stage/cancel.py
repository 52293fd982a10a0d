"""Cancel requests as every stage worker takes them, and the subscriptions a stage worker closes on its way out."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from jetscribe.stage.abort import AbortSignal
from schemas import SchemaError
from schemas.codec import decode_cancel

log = logging.getLogger(__name__)


def abort_requested(msg: Msg, running: Mapping[str, AbortSignal], what: str) -> None:
    """Trigger the abort of the job a `CancelRequest` names when it runs here (`running`: job id → its abort);
    a malformed request is logged and ignored. `what` names the work in the log ("job", "the diarization of job")."""
    try:
        request = decode_cancel(msg.data)
    except SchemaError as exc:
        log.warning("ignored a malformed cancel request on %s: %s", msg.subject, exc)
        return
    abort = running.get(request.job_id)
    if abort is not None:
        log.info("cancelling %s %s", what, request.job_id)
        abort.trigger("cancelled")


async def unsubscribe(sub: Subscription | JetStreamContext.PullSubscription) -> None:
    """Unsubscribe; a connection already closed or draining has nothing left to undo."""
    with contextlib.suppress(NatsError):
        await sub.unsubscribe()
