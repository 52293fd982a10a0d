"""Per-host bounds on webhook attempts, so that one slow or silent receiver only slows itself.

Every gateway runs at most `webhook_concurrency` attempts at once, and at most
`webhook_host_concurrency` of them towards any one host. An event whose host already has its
share in flight is not held (it would hold a slot that other receivers need): it goes back to the
broker with a delay, uncounted as an attempt. A receiver that answers late, or never, thus holds
only its own slots, and events for every other host are fetched and sent as soon as they arrive.

The delays pace a busy host's events at the rate it has been taking them: each deferral is due one
`attempt time / host limit` after the previous one, where the attempt time is a moving average of
the host's finished attempts (at least as long as its oldest attempt in flight). A receiver that
answers in 50 ms gets its backlog back at 80 events per second with 4 slots; one that never
answers, one event every 2.5 s with 10 s time-outs, so its backlog costs the broker almost nothing.
No deferral is longer than `DEFER_MAX_S`.

Hosts are compared by name as written in the URL (lower-cased, port ignored): two ports of one
host share its slots. The bound is per gateway; N gateways send up to N times as much to one host.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from yarl import URL

DEFER_MIN_S: Final = 0.1
"""Shortest deferral: an event never comes straight back to find the same attempts still in flight."""
DEFER_MAX_S: Final = 60.0
"""Longest deferral: a host that recovers sees its backlog again within a minute, and a backlog of
N events for a silent host costs at most about N / 60 fetches per second."""
SMOOTHING: Final = 0.2
"""Weight of the latest attempt in a host's moving average of attempt time."""


def target_host(url: str) -> str | None:
    """The host part of a webhook URL, lower-cased; None when it has none (the attempt refuses it)."""
    try:
        host = URL(url).host
    except (ValueError, TypeError):
        return None
    return host.lower() if host else None


@dataclass
class _Host:
    started: Counter[float] = field(default_factory=Counter)
    """Monotonic start times of the attempts in flight."""
    attempt_s: float = 0.0
    """Moving average of finished attempts' durations; 0 before the first one ends."""
    next_due: float = 0.0
    """Monotonic time at which the next deferred event should come back."""


class HostSlots:
    """Attempts in flight per host, against a cap per host, and the pacing of events that must wait."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._hosts: dict[str, _Host] = {}

    def try_take(self, host: str) -> float | None:
        """Take a slot for `host`: its start time, to hand to `give_back`; None when all are in use."""
        state = self._hosts.setdefault(host, _Host())
        if state.started.total() >= self.limit:
            return None
        started = time.monotonic()
        state.started[started] += 1
        return started

    def give_back(self, host: str, started: float) -> None:
        """Free the slot taken at `started`, learning how long the attempt took."""
        state = self._hosts[host]
        state.started[started] -= 1
        if not state.started[started]:
            del state.started[started]
        now = time.monotonic()
        took = now - started
        state.attempt_s = took if not state.attempt_s else (1 - SMOOTHING) * state.attempt_s + SMOOTHING * took
        if not state.started:
            # Idle: forget the host, so that one-off hosts leave nothing behind. Events already
            # deferred still come back when due; new ones are paced afresh.
            del self._hosts[host]

    def in_flight(self, host: str) -> int:
        state = self._hosts.get(host)
        return state.started.total() if state else 0

    def deferral_s(self, host: str) -> float:
        """How long an event for busy `host` should wait in the broker before it is fetched again."""
        state = self._hosts.setdefault(host, _Host())
        now = time.monotonic()
        oldest = min(state.started, default=now)
        spacing = max(state.attempt_s, now - oldest) / self.limit
        due = min(max(now + DEFER_MIN_S, state.next_due), now + DEFER_MAX_S)
        state.next_due = due + spacing
        return due - now
