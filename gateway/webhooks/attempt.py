"""One webhook attempt: the POST, what came of it, and how that changes the job's webhook state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from typing import Final

import aiohttp
import msgspec

from jetscribe.errors import UnsafeTargetError
from jetscribe.netguard import http_host
from schemas import JobRecord, WebhookState

GONE: Final = 410
USER_AGENT: Final = f"jetscribe/{version('jetscribe')}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: an HTTP status, or an error when no answer came."""

    status: int | None = None
    error: str | None = None
    final: bool = False
    """No further attempt can succeed (410 Gone, or the target is refused)."""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def post_webhook(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST `body` to `url` once. Never raises for the receiver's faults: they become the Outcome.

    Redirects are not followed: a receiver that moved answers 3xx, which counts as a failed attempt.
    """
    try:
        http_host(url)
        async with session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
            allow_redirects=False,
        ) as response:
            status = response.status
    except UnsafeTargetError as exc:
        return Outcome(error=f"refused: {exc}", final=True)
    except TimeoutError:
        timeout = session.timeout.total
        return Outcome(error=f"no answer within {timeout:g} s" if timeout else "timed out")
    except aiohttp.ClientError as exc:
        return Outcome(error=f"request failed: {exc}")
    if 200 <= status < 300:
        return Outcome(status=status)
    if status == GONE:
        return Outcome(status=status, error="receiver answered 410 Gone: delivery stopped", final=True)
    return Outcome(status=status, error=f"receiver answered HTTP {status}")


def recorded_attempt(record: JobRecord, outcome: Outcome, *, max_attempts: int, now: datetime) -> JobRecord | None:
    """`record` with one more attempt in its webhook state (a `JobStore.transition` change).

    None when another copy of the event already finished the delivery.
    """
    assert record.webhook_url is not None
    previous = record.webhook or WebhookState(url=record.webhook_url)
    if previous.delivered_at is not None or previous.exhausted:
        return None
    attempts = previous.attempts + 1
    state = WebhookState(
        url=record.webhook_url,
        attempts=attempts,
        last_status=outcome.status,
        last_error=outcome.error,
        delivered_at=now if outcome.delivered else None,
        exhausted=not outcome.delivered and (outcome.final or attempts >= max_attempts),
    )
    return msgspec.structs.replace(record, webhook=state)


def given_up(record: JobRecord, reason: str) -> JobRecord | None:
    """`record` with its webhook marked exhausted for `reason`, without an attempt."""
    assert record.webhook_url is not None
    previous = record.webhook or WebhookState(url=record.webhook_url)
    if previous.delivered_at is not None or previous.exhausted:
        return None
    return msgspec.structs.replace(record, webhook=msgspec.structs.replace(previous, exhausted=True, last_error=reason))
