"""Fault-test fixtures: quick redelivery settings, and waiting for many jobs to end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Final

import msgspec
import pytest
from nats.errors import Error as NatsError

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from schemas import JobRecord

POLL_S: Final = 0.25


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A killed worker's job is redelivered within seconds; a worker waits no grace period on the way out."""
    return msgspec.structs.replace(
        settings, ack_wait_s=4.0, in_progress_interval_s=1.0, shutdown_grace_s=0.0, retry_delay_s=0.5, threads=1
    )


async def wait_until_terminal(store: JobStore, job_ids: Iterable[str], *, within_s: float) -> dict[str, JobRecord]:
    """Poll KV until every job is terminal; NATS errors (an outage in progress) are waited out."""
    pending = set(job_ids)
    ended: dict[str, JobRecord] = {}
    async with asyncio.timeout(within_s):
        while pending:
            for job_id in list(pending):
                try:
                    found = await store.get(job_id)
                except (NatsError, TimeoutError):
                    continue
                if found is not None and found.record.is_terminal:
                    ended[job_id] = found.record
                    pending.discard(job_id)
            if pending:
                await asyncio.sleep(POLL_S)
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
