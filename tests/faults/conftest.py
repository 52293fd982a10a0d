"""Fault-test fixtures: quick redelivery settings, and waiting for many jobs to end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Final

import msgspec
import pytest
from nats.errors import Error as NatsError

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from schemas import JobRecord

POLL_S: Final = 0.25
DIAGNOSIS_CHARS: Final = 20_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A killed worker's job is redelivered within seconds; a worker waits no grace period on the way out."""
    return msgspec.structs.replace(
        settings, ack_wait_s=4.0, in_progress_interval_s=1.0, shutdown_grace_s=0.0, retry_delay_s=0.5, threads=1
    )


async def wait_until_terminal(
    store: JobStore, job_ids: Iterable[str], *, within_s: float, diagnose: Callable[[], str] | None = None
) -> dict[str, JobRecord]:
    """Poll KV until every job is terminal; NATS errors (an outage in progress) are waited out.

    On time-out, fails with each unfinished job's last seen state and the tail of `diagnose()` (a worker's log).
    """
    pending = set(job_ids)
    ended: dict[str, JobRecord] = {}
    last: dict[str, str] = {}
    try:
        async with asyncio.timeout(within_s):
            while pending:
                for job_id in list(pending):
                    try:
                        found = await store.get(job_id)
                    except (NatsError, TimeoutError) as exc:
                        last[job_id] = f"unreadable: {exc!r}"
                        continue
                    if found is not None and found.record.is_terminal:
                        ended[job_id] = found.record
                        pending.discard(job_id)
                    elif found is not None:
                        record = found.record
                        last[job_id] = f"{record.status}, attempt {record.attempts}, on {record.worker_id}"
                if pending:
                    await asyncio.sleep(POLL_S)
    except TimeoutError:
        states = "\n".join(f"  {job_id}: {last.get(job_id, 'no record')}" for job_id in sorted(pending))
        detail = diagnose()[-DIAGNOSIS_CHARS:] if diagnose else ""
        raise AssertionError(f"{len(pending)} jobs unfinished after {within_s} s:\n{states}\n{detail}") from None
    return ended


async def wait_until_running(
    store: JobStore, job_ids: Iterable[str], *, within_s: float, on: Iterable[str | None] | None = None
) -> JobRecord:
    """The first of `job_ids` seen running (a worker holds it mid-job), on one of the workers `on` if given."""
    wanted = None if on is None else set(on)
    async with asyncio.timeout(within_s):
        while True:
            for job_id in job_ids:
                try:
                    found = await store.get(job_id)
                except (NatsError, TimeoutError):
                    continue
                record = found.record if found is not None else None
                if record is not None and record.status == "running" and (wanted is None or record.worker_id in wanted):
                    return record
            await asyncio.sleep(0.05)
