"""GET /jobs on the job-list index: paging at scale while jobs arrive and change, status lists, foreign jobs."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import aiohttp
import msgspec
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from gateway.joblist.index import JobListIndex
from gateway.joblist.pages import JobListReader, list_subject
from jetscribe.config import Settings
from jetscribe.directget import get_batch
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology, ensure_topology
from schemas import JobMessage, JobRecord, encode, names
from schemas.codec import decode_list_entry
from schemas.joblist import JobListEntry
from tests.gateway.conftest import AUDIO, StartGateway

TINY_AUDIO = b"not decoded by the gateway: these jobs never reach a worker"


async def submit(http: aiohttp.ClientSession) -> str:
    form = aiohttp.FormData()
    form.add_field("audio", TINY_AUDIO, filename="tiny.wav")
    async with http.post("/jobs", data=form) as response:
        assert response.status == 202, await response.text()
        return (await response.json())["job_id"]


async def submit_many(http: aiohttp.ClientSession, count: int) -> list[str]:
    """`count` jobs, one after the other: their submission order is known."""
    return [await submit(http) for _ in range(count)]


async def page_through(http: aiohttp.ClientSession, query: str = "", *, limit: int = 50) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        params = f"?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        async with http.get(f"/jobs{params}") as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        ids += [job["id"] for job in body["jobs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


async def cancel(http: aiohttp.ClientSession, job_id: str) -> None:
    async with http.delete(f"/jobs/{job_id}") as response:
        assert response.status == 204


async def eventually(check, *, timeout_s: float = 20.0):  # type: ignore[no-untyped-def]
    """Retry `check()` (async, raising AssertionError) until it passes: for what the indexer does shortly."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.mark.timeout(300)
async def test_paging_through_thousands_returns_each_job_once_in_order_while_jobs_arrive_and_change(
    http: aiohttp.ClientSession,
) -> None:
    kept = await submit_many(http, 1500)
    arrived: list[str] = []
    paging_done = asyncio.Event()

    async def keep_changing() -> None:
        changeable = kept[::7]
        while not paging_done.is_set():
            arrived.append(await submit(http))
            if changeable:
                await cancel(http, changeable.pop())

    changer = asyncio.create_task(keep_changing())
    try:
        paged = await page_through(http, limit=37)
    finally:
        paging_done.set()
        await changer

    assert arrived, "no job arrived while paging"
    newer, older = paged[: -len(kept)], paged[-len(kept) :]
    assert older == kept[::-1]
    assert set(newer) <= set(arrived)


async def test_a_status_list_holds_the_jobs_in_that_status_newest_arrival_first(http: aiohttp.ClientSession) -> None:
    ids = await submit_many(http, 120)
    cancelled = random.Random(7).sample(ids, 9)
    for job_id in cancelled:
        await cancel(http, job_id)

    assert await page_through(http, "&status=cancelled", limit=4) == cancelled[::-1]
    assert await page_through(http, "&status=queued", limit=25) == [i for i in ids[::-1] if i not in cancelled]
    assert await page_through(http, "&status=failed") == []


async def test_a_page_past_the_oldest_job_is_empty_and_last(http: aiohttp.ClientSession) -> None:
    ids = await submit_many(http, 4)
    async with http.get("/jobs?limit=2") as response:
        first = await response.json()
    async with http.get(f"/jobs?limit=2&cursor={first['next_cursor']}") as response:
        second = await response.json()

    assert [j["id"] for j in first["jobs"] + second["jobs"]] == ids[::-1]
    assert second["next_cursor"] is None


async def test_a_cursor_is_refused_with_another_status(http: aiohttp.ClientSession) -> None:
    await submit_many(http, 3)
    async with http.get("/jobs?limit=1&status=queued") as response:
        cursor = (await response.json())["next_cursor"]
    async with http.get(f"/jobs?limit=1&cursor={cursor}") as response:
        body = await response.json()

    assert response.status == 400
    assert "status=queued" in body["error"]


async def test_a_job_whose_record_is_gone_is_not_listed(http: aiohttp.ClientSession, topology: Topology) -> None:
    kept, purged = await submit_many(http, 2)
    await topology.jobs.purge(purged)

    async with http.get("/jobs") as response:
        body = await response.json()
    assert [j["id"] for j in body["jobs"]] == [kept]

    async def forgotten_by_the_index() -> None:
        assert await topology.job_list.keys() == [kept]

    await eventually(forgotten_by_the_index)


async def test_jobs_kept_before_the_gateway_started_are_listed(
    start_gateway: StartGateway, job_store: JobStore
) -> None:
    now = datetime.now(UTC)
    ids = [f"kept-before-{n}" for n in range(3)]
    for job_id in ids:
        message = JobMessage(job_id=job_id, audio_object=job_id, submitted_at=now)
        await job_store.create(JobRecord.queued(message, created_at=now))

    _, http = await start_gateway()

    async def all_listed() -> None:
        assert sorted(await page_through(http)) == sorted(ids)

    await eventually(all_listed)


@pytest.mark.usefixtures("worker")
async def test_a_job_published_straight_to_nats_is_listed_and_follows_its_status(
    http: aiohttp.ClientSession, js: JetStreamContext, topology: Topology
) -> None:
    await topology.audio.put("straight", (AUDIO / "en1.ogg").read_bytes())
    message = JobMessage(job_id="straight-to-nats", audio_object="straight", language="en")
    await js.publish(names.JOBS_SUBJECT, encode(message), headers={names.MSG_ID_HEADER: message.job_id})

    async def listed_as_done() -> None:
        assert await page_through(http) == ["straight-to-nats"]
        assert await page_through(http, "&status=done") == ["straight-to-nats"]
        assert await page_through(http, "&status=queued") == []
        assert await page_through(http, "&status=running") == []

    await eventually(listed_as_done, timeout_s=120)


@pytest.mark.parametrize("density", [1.0, 0.3, 0.02])
async def test_reading_newest_first_matches_the_stream_read_forward(
    nc: Client, js: JetStreamContext, topology: Topology, density: float
) -> None:
    wanted, other = names.status_list_subject("t", "done"), names.status_list_subject("t", "failed")
    chance = random.Random(density)
    for n in range(2000):
        subject = wanted if chance.random() < density else other
        await js.publish(subject, encode(JobListEntry(job_id=str(n))))
    forward = await get_batch(nc, names.JOB_STATUS_LIST_STREAM, wanted, start_seq=1, count=5000)
    everything = [m.seq for m in forward.messages]

    reader = JobListReader(nc)
    for before in [None, *chance.sample(range(1, 2002), 15)]:
        for count in (1, 10, 51):
            scan = await reader.newest_before(names.JOB_STATUS_LIST_STREAM, wanted, before=before, count=count)
            expected = [s for s in everything if before is None or s < before][::-1][:count]
            assert [m.seq for m in scan.messages] == expected, (before, count)


async def test_the_job_list_streams_allow_direct_reads_and_expire_with_job_records(
    js: JetStreamContext, topology: Topology, settings: Settings
) -> None:
    for stream, subjects in (
        (names.JOB_LIST_STREAM, names.JOB_LIST_STREAM_SUBJECTS),
        (names.JOB_STATUS_LIST_STREAM, names.JOB_STATUS_LIST_STREAM_SUBJECTS),
    ):
        config = (await js.stream_info(stream)).config
        assert config.subjects == list(subjects)
        assert config.allow_direct
        assert config.max_age == settings.job_ttl_s
    assert (await js.stream_info(names.kv_stream(names.JOBS_BUCKET))).config.allow_direct


async def test_a_job_keeps_the_name_of_its_file_for_the_list(http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("audio", TINY_AUDIO, filename="Board meeting 2026-11-24.m4a")
    async with http.post("/jobs", data=form) as response:
        job_id = (await response.json())["job_id"]
    async with http.get("/jobs") as response:
        [listed] = (await response.json())["jobs"]

    assert listed["id"] == job_id
    assert listed["filename"] == "Board meeting 2026-11-24.m4a"


async def test_a_change_read_late_never_undoes_a_newer_one(
    js: JetStreamContext, nc: Client, topology: Topology
) -> None:
    index = JobListIndex(js, topology.job_list)
    now = datetime.now(UTC)
    queued = JobRecord.queued(JobMessage(job_id="late-change", audio_object="a"), created_at=now)
    running = msgspec.structs.replace(queued, status="running")
    done = msgspec.structs.replace(queued, status="done")
    await index.add_submission(queued)
    await index.reflect(running, 5)
    await index.reflect(done, 7)
    await index.reflect(running, 5)

    reader = JobListReader(nc)
    for status, expected in (("done", ["late-change"]), ("running", []), ("queued", [])):
        stream, subject = list_subject(names.DEFAULT_TENANT, status)
        scan = await reader.newest_before(stream, subject, before=None, count=10)
        assert [decode_list_entry(m.data).job_id for m in scan.messages] == expected, status


async def test_a_record_that_cannot_be_read_is_left_out_and_the_rest_are_listed(
    http: aiohttp.ClientSession, topology: Topology
) -> None:
    await topology.jobs.put("garbled", b"{not a job record")
    kept = await submit(http)

    async def listed() -> None:
        assert await page_through(http) == [kept]

    await eventually(listed)
    assert await topology.job_list.keys() == [kept]


async def test_a_jobs_bucket_made_before_the_job_list_is_opened_to_direct_reads(
    js: JetStreamContext, settings: Settings
) -> None:
    await js.create_key_value(api.KeyValueConfig(bucket=names.JOBS_BUCKET, history=1, ttl=settings.job_ttl_s))
    assert not (await js.stream_info(names.kv_stream(names.JOBS_BUCKET))).config.allow_direct

    await ensure_topology(js, settings)

    assert (await js.stream_info(names.kv_stream(names.JOBS_BUCKET))).config.allow_direct
