"""One webhook attempt: the POST, what came of it, and how that changes the job's webhook state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from typing import Final

import aiohttp
import msgspec
from yarl import URL

from jetscribe.errors import UnsafeTargetError
from jetscribe.netguard import ALLOWED_SCHEMES, http_host
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

    Redirects are not followed: a receiver that moved answers 3xx, which counts as a failed attempt,
    except a redirect to a scheme other than http(s) (`file:`, `gopher:`, …), which no retry can
    make deliverable and so ends the delivery at once.
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
            location = response.headers.get("Location") if 300 <= status < 400 else None
    except UnsafeTargetError as exc:
        return Outcome(error=f"refused: {exc}", final=True)
    except TimeoutError:
        timeout = session.timeout.total
        return Outcome(error=f"no answer within {timeout:g} s" if timeout else "timed out")
    except aiohttp.ClientError as exc:
        return Outcome(error=f"request failed: {exc}")
    if 200 <= status < 300:
        return Outcome(status=status)
    if location is not None and (refusal := _non_http_redirect(url, location)) is not None:
        return Outcome(status=status, error=refusal, final=True)
    if status == GONE:
        return Outcome(status=status, error="receiver answered 410 Gone: delivery stopped", final=True)
    return Outcome(status=status, error=f"receiver answered HTTP {status}")


def _non_http_redirect(url: str, location: str) -> str | None:
    """The refusal of a redirect to a scheme other than http(s), or None for any other `Location`."""
    try:
        target = URL(url).join(URL(location))
    except (ValueError, TypeError):
        return None  # a malformed Location is an ordinary failed attempt
    if target.scheme in ALLOWED_SCHEMES:
        return None
    return (
        f"refused: the receiver redirected to {location!r}; webhooks go to http:// or https:// URLs only "
        "and redirects are not followed: delivery stopped"
    )


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
