"""Retention: a job's audio is deleted once the job has ended (unless kept); state and transcripts expire."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from jetscribe.config import Settings
from jetscribe.jobqueue import tenant_consumer_config
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology, ensure_topology
from schemas import names
from tests.gateway.conftest import AUDIO, StartGateway, audio_form, object_names
from tests.worker.jobs import submit, terminal_event
from worker.service import Worker

SHORT_TTL_S = 6.0  # longer than the job takes on a loaded machine: its record must outlive the run


async def eventually(check: Callable[[], Awaitable[bool]], *, within_s: float) -> bool:
    """True once `check()` is; raises TimeoutError after `within_s`."""
    async with asyncio.timeout(within_s):
        while True:
            if await check():
                return True
            await asyncio.sleep(0.1)


async def audio_deleted(topology: Topology, *, within_s: float = 10.0) -> bool:
    """Whether the audio bucket empties within `within_s` (the worker deletes after its terminal event)."""

    async def empty() -> bool:
        return not await object_names(topology)

    return await eventually(empty, within_s=within_s)


async def submit_and_finish(http: aiohttp.ClientSession, js: JetStreamContext, audio: str = "en1.wav") -> str:
    async with http.post("/jobs", data=audio_form(AUDIO / audio)) as response:
        assert response.status == 202
        job_id = str((await response.json())["job_id"])
    await terminal_event(js, job_id)
    return job_id


async def test_uploaded_audio_is_deleted_once_the_job_is_done(
    worker: Worker, http: aiohttp.ClientSession, js: JetStreamContext, topology: Topology
) -> None:
    job_id = await submit_and_finish(http, js)
    async with http.get(f"/jobs/{job_id}/transcript") as response:
        assert response.status == 200 and (await response.text()).strip()
    assert await audio_deleted(topology)


async def test_audio_of_a_failed_job_is_deleted_too(
    worker: Worker, http: aiohttp.ClientSession, js: JetStreamContext, topology: Topology
) -> None:
    job_id = await submit_and_finish(http, js, "not_audio.txt")
    async with http.get(f"/jobs/{job_id}") as response:
        assert (await response.json())["status"] == "failed"
    assert await audio_deleted(topology)


async def test_producers_audio_object_is_deleted_when_its_job_ends(
    worker: Worker, js: JetStreamContext, topology: Topology
) -> None:
    job_id = await submit(js, topology, AUDIO / "en2.wav")
    assert len(await object_names(topology)) == 1
    await terminal_event(js, job_id)
    assert await audio_deleted(topology)


async def test_audio_of_a_job_that_ran_out_of_deliveries_is_deleted(
    settings: Settings, nc: Client, js: JetStreamContext, topology: Topology
) -> None:
    crashing = msgspec.structs.replace(settings, max_deliver=2, ack_wait_s=1.0)
    await js.add_consumer(names.JOBS_STREAM, tenant_consumer_config(crashing, "tiny.en", names.DEFAULT_TENANT))
    job_id = await submit(js, topology, AUDIO / "en3.wav", model="tiny.en")
    sub = await js.pull_subscribe_bind(names.tenant_consumer("tiny.en", names.DEFAULT_TENANT), names.JOBS_STREAM)
    for _ in range(2):  # taken and never acknowledged: a worker that dies each time
        await sub.fetch(1, timeout=10)
    await sub.unsubscribe()

    async with Worker(crashing, nc):
        event = await terminal_event(js, job_id)
        assert await audio_deleted(topology)

    assert event.type == "failed" and (event.job.error or "").startswith("gave up after 2 deliveries")


async def test_audio_is_kept_when_configured(
    settings: Settings, nc: Client, start_gateway: StartGateway, js: JetStreamContext, topology: Topology
) -> None:
    keeping = msgspec.structs.replace(settings, keep_audio=True)
    _, http = await start_gateway(keep_audio=True)
    async with Worker(keeping, nc):
        job_id = await submit_and_finish(http, js)
    assert await object_names(topology) == [job_id]


async def test_job_state_transcript_and_audio_expire_after_the_ttl(
    settings: Settings, nc: Client, js: JetStreamContext
) -> None:
    short = msgspec.structs.replace(settings, job_ttl_s=SHORT_TTL_S, keep_audio=True)
    topology = await ensure_topology(js, short)
    store = JobStore(topology.jobs, topology.transcripts)
    async with Worker(short, nc):
        job_id = await submit(js, topology, AUDIO / "en1.wav")
        await terminal_event(js, job_id)
    record = (await store.require(job_id)).record
    assert record.status == "done" and record.transcript_object is not None
    for stream in (
        names.kv_stream(names.JOBS_BUCKET),
        names.object_stream(names.TRANSCRIPTS_BUCKET),
        names.object_stream(names.AUDIO_BUCKET),
    ):
        assert (await js.stream_info(stream)).config.max_age == SHORT_TTL_S

    async def expired() -> bool:
        gone = await store.get(job_id) is None
        return gone and not await transcript_names(topology) and not await object_names(topology)

    assert await eventually(expired, within_s=SHORT_TTL_S + 10)


async def transcript_names(topology: Topology) -> list[str]:
    try:
        return [info.name for info in await topology.transcripts.list(ignore_deletes=True)]
    except NotFoundError:
        return []
