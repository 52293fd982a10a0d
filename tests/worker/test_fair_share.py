"""Fair sharing of a model's slots between tenants (worker/fairshare.py): a tenant with nothing running is not
kept waiting behind another tenant's backlog, and the backlog still runs, each job once."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from nats.js import JetStreamContext

from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import DecodeOptions, JobMessage, JobRecord
from tests.models.conftest import record_when
from tests.worker.jobs import AUDIO, jobs_left, new_job_id, publish_job, terminal_event, terminal_event_count, upload
from worker.fairshare import TenantQueue, serving_order
from worker.service import Worker

BACKLOG: Final = 30


async def submit_as(js: JetStreamContext, topology: Topology, tenant: str, audio: Path) -> str:
    """Publish a tiny.en job of `tenant` straight to NATS, on the tenant's subject; returns its id."""
    message = JobMessage(
        job_id=new_job_id(),
        audio_object=await upload(topology, audio),
        model="tiny.en",
        tenant=tenant,
        options=DecodeOptions(beam_size=1, word_timestamps=False),
    )
    await publish_job(js, message)
    return message.job_id


async def records(store: JobStore, job_ids: list[str]) -> list[JobRecord]:
    found = [await store.get(job_id) for job_id in job_ids]
    return [entry.record for entry in found if entry is not None]


@pytest.mark.timeout(600)
async def test_a_tenant_with_nothing_running_takes_the_next_free_slot_while_another_has_a_backlog(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    backlog = [await submit_as(js, topology, "tenant-a", AUDIO / f"en{n % 6 + 1}.wav") for n in range(BACKLOG)]
    await record_when(job_store, backlog[0], lambda record: record.status != "queued", within_s=60)
    started_before = sum(record.started_at is not None for record in await records(job_store, backlog))
    late = await submit_as(js, topology, "tenant-b", AUDIO / "en1.wav")

    events = [await terminal_event(js, job_id, within_s=300) for job_id in [late, *backlog]]
    (late_record,) = await records(job_store, [late])
    backlog_records = await records(job_store, backlog)

    assert late_record.started_at is not None
    started_ahead = sum(
        record.started_at is not None and record.started_at < late_record.started_at for record in backlog_records
    )
    # The job taken as the late one arrived, and one more taken while the test counted, may come first; the
    # rest of the backlog may not.
    assert started_ahead - started_before <= 2, (started_before, started_ahead)
    assert {event.type for event in events} == {"completed"}
    assert [await terminal_event_count(js, job_id) for job_id in [late, *backlog]] == [1] * (BACKLOG + 1)
    assert {record.attempts for record in backlog_records} == {1}
    assert await jobs_left(js) == 0


def test_a_free_slot_tries_the_tenant_with_fewest_running_jobs_first() -> None:
    queues = [
        TenantQueue(tenant="a", jobs=200, running=3),
        TenantQueue(tenant="b", jobs=1, running=0),
        TenantQueue(tenant="c", jobs=5, running=1),
    ]
    assert serving_order(queues, last=None) == ["b", "c", "a"]


def test_tenants_with_as_many_running_jobs_take_turns_after_the_last_one_served() -> None:
    queues = [TenantQueue(tenant=name, jobs=10, running=1) for name in ("a", "b", "c", "d")]
    assert serving_order(queues, last="b") == ["c", "d", "a", "b"]
    assert serving_order(queues, last="d") == ["a", "b", "c", "d"]
