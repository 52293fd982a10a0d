"""Batched reads of a stream by sequence and subject: JetStream's Direct Get API (ADR-31).

nats-py reads one message per request; the job list reads a page in one. A batch request names a
start sequence, a subject and a count; the server answers with up to that many messages at or after
the start on that subject, then an end-of-batch status message (`204 EOB`) whose `Nats-Num-Pending`
header counts the matching messages after the last one sent. A `multi_last` request names subjects
and gets the newest message of each (a page's job records from the jobs bucket, in one read). A
request that matches nothing gets `404`. The stream needs `allow_direct`. With a literal subject the
server seeks and counts through its per-subject index, so a batch costs what it returns, however
long the stream is (measured in BENCHMARKS.md, "Job list").
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Final

from nats.aio.client import Client
from nats.aio.msg import Msg

from jetscribe.errors import DirectGetError
from schemas import names

DEFAULT_TIMEOUT_S: Final = 5.0
STATUS_HEADER: Final = "Status"
SEQUENCE_HEADER: Final = "Nats-Sequence"
SUBJECT_HEADER: Final = "Nats-Subject"
PENDING_HEADER: Final = "Nats-Num-Pending"
END_OF_BATCH: Final = "204"
NOT_FOUND: Final = "404"
NO_RESPONDERS: Final = "503"
MAX_MULTI_SUBJECTS: Final = 1024
"""The most subjects one `multi_last` read may match (ADR-31); more are refused with 413."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as the stream keeps it."""

    seq: int
    subject: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    """Messages at or after a start sequence on one subject, ascending, and how many more follow them."""

    messages: list[StoredMessage]
    pending: int
    """Matching messages after the last one in `messages` (0 when nothing matched)."""

    @property
    def matching(self) -> int:
        """Matching messages at or after the start sequence: those returned plus those pending."""
        return len(self.messages) + self.pending


async def get_batch(
    nc: Client, stream: str, subject: str, *, start_seq: int, count: int, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Batch:
    """Up to `count` messages on `subject` at or after `start_seq` (≥ 1), ascending.

    Raises DirectGetError when the stream refuses the request, TimeoutError when it does not answer.
    """
    request = {"seq": max(1, start_seq), "next_by_subj": subject, "batch": count}
    messages, end = await _request(nc, stream, request, batched=True, timeout_s=timeout_s)
    pending = int((end.headers or {}).get(PENDING_HEADER, "0")) if end is not None else 0
    return Batch(messages, pending)


async def get_last(
    nc: Client, stream: str, subject: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> StoredMessage | None:
    """The newest message on `subject`, or None when it has none."""
    messages, _ = await _request(nc, stream, {"last_by_subj": subject}, batched=False, timeout_s=timeout_s)
    return messages[0] if messages else None


async def get_last_for(
    nc: Client, stream: str, subjects: list[str], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[StoredMessage]:
    """The newest message on each of `subjects` (literal, at most `MAX_MULTI_SUBJECTS`) that has one, in one read."""
    if not subjects:
        return []
    if len(subjects) > MAX_MULTI_SUBJECTS:
        raise ValueError(f"one read takes at most {MAX_MULTI_SUBJECTS} subjects, not {len(subjects)}")
    request = {"multi_last": subjects, "batch": len(subjects)}
    messages, _ = await _request(nc, stream, request, batched=True, timeout_s=timeout_s)
    return messages


async def _request(
    nc: Client, stream: str, request: dict[str, object], *, batched: bool, timeout_s: float
) -> tuple[list[StoredMessage], Msg | None]:
    """Send one Direct Get request; collect its replies up to the end of the batch (or the one reply)."""
    loop = asyncio.get_running_loop()
    messages: list[StoredMessage] = []
    finished: asyncio.Future[Msg | None] = loop.create_future()

    async def collect(msg: Msg) -> None:
        if finished.done():
            return
        headers = msg.headers or {}
        status = headers.get(STATUS_HEADER)
        if status is None:
            messages.append(StoredMessage(int(headers[SEQUENCE_HEADER]), headers[SUBJECT_HEADER], msg.data))
            if not batched:
                finished.set_result(None)
        elif status == END_OF_BATCH or status == NOT_FOUND:
            finished.set_result(msg)
        elif status == NO_RESPONDERS:
            finished.set_exception(DirectGetError(f"stream {stream} does not answer Direct Get requests"))
        else:
            description = headers.get("Description", "")
            finished.set_exception(DirectGetError(f"stream {stream} refused a read: {status} {description}"))

    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox, cb=collect)
    try:
        await nc.publish(names.direct_get_subject(stream), json.dumps(request).encode(), reply=inbox)
        async with asyncio.timeout(timeout_s):
            end = await finished
    finally:
        await subscription.unsubscribe()
    return messages, end
