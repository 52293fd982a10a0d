"""The diarization stage end to end on a real nats-server: a whisper worker (tiny.en) transcribes, hands the job to
a diarization worker, which labels it with its speakers and completes it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import ObjectNotFoundError

from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import names
from schemas.codec import decode_live_event
from schemas.events import ProgressEvent
from tests.diarization.conftest import StartDiarizer
from tests.worker.jobs import submit, terminal_event
from worker.service import Worker

WITHIN_S: Final = 120.0


@contextlib.asynccontextmanager
async def stages_seen(nc: Client) -> AsyncIterator[dict[str, list[str]]]:
    """Job id → the progress stages its events named, in order, while the block runs."""
    seen: dict[str, list[str]] = defaultdict(list)

    async def note(msg: object) -> None:
        event = decode_live_event(msg.data)  # type: ignore[attr-defined]
        if isinstance(event, ProgressEvent) and (not seen[event.job_id] or seen[event.job_id][-1] != event.stage):
            seen[event.job_id].append(event.stage)

    sub = await nc.subscribe(names.PROGRESS_WILDCARD, cb=note)
    try:
        yield seen
    finally:
        await sub.unsubscribe()


async def diarize_messages_ever(js: JetStreamContext) -> int:
    return (await js.stream_info(names.DIARIZE_STREAM)).state.last_seq


async def test_a_job_with_diarize_comes_back_with_a_speaker_on_every_segment_and_word(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    worker: Worker,
    start_diarizer: StartDiarizer,
    conversation_wav: Path,
) -> None:
    async with stages_seen(nc) as seen, start_diarizer():
        job_id = await submit(js, topology, conversation_wav, language="en", options={"diarize": True})
        event = await terminal_event(js, job_id, within_s=WITHIN_S)

    assert event.type == "completed", event.job.error
    record = (await job_store.require(job_id)).record
    assert record.status == "done"
    assert [s.speaker for s in record.speakers or []] == ["SPEAKER_00", "SPEAKER_01"]
    assert sum(s.speaking_time_s for s in record.speakers or []) > 15
    assert event.job.speakers == record.speakers
    assert record.transcript_object is not None
    segments = await job_store.get_transcript(record.transcript_object)
    assert segments and all(s.speaker in ("SPEAKER_00", "SPEAKER_01") for s in segments)
    assert {s.speaker for s in segments} == {"SPEAKER_00", "SPEAKER_01"}
    words = [w for s in segments for w in s.words]
    assert words and all(w.speaker == s.speaker for s in segments for w in s.words)
    assert "transcribing" in seen[job_id] and seen[job_id].index("diarizing") > seen[job_id].index("transcribing")


async def test_a_diarized_job_passes_through_status_diarizing_and_waits_there_for_a_diarization_worker(
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    worker: Worker,
    start_diarizer: StartDiarizer,
    conversation_wav: Path,
) -> None:
    job_id = await submit(js, topology, conversation_wav, language="en", options={"diarize": True})
    async with asyncio.timeout(WITHIN_S):
        while True:
            found = await job_store.get(job_id)
            if found is not None and found.record.status == "diarizing":
                break
            await asyncio.sleep(0.1)
    waiting = (await job_store.require(job_id)).record
    audio_object = waiting.audio_object
    assert audio_object is not None
    assert worker.current_jobs == []  # the whisper slot is free while the job waits
    assert waiting.completed_at is None and waiting.transcript_object is not None
    assert (await topology.audio.get_info(audio_object)) is not None  # the audio is kept for the stage

    async with start_diarizer():
        event = await terminal_event(js, job_id, within_s=WITHIN_S)

    assert event.type == "completed", event.job.error
    assert event.job.speakers
    async with asyncio.timeout(10):
        while True:
            try:
                await topology.audio.get_info(audio_object)
            except ObjectNotFoundError:
                break  # released once the last stage that needs it has finished
            await asyncio.sleep(0.1)


async def test_a_job_without_diarize_never_enters_the_stage(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    worker: Worker,
    start_diarizer: StartDiarizer,
    conversation_wav: Path,
) -> None:
    async with stages_seen(nc) as seen, start_diarizer():
        job_id = await submit(js, topology, conversation_wav, language="en")
        event = await terminal_event(js, job_id, within_s=WITHIN_S)

    assert event.type == "completed", event.job.error
    assert "diarizing" not in seen[job_id]
    assert await diarize_messages_ever(js) == 0
    record = (await job_store.require(job_id)).record
    assert record.speakers is None
    assert record.transcript_object is not None
    assert all(s.speaker is None for s in await job_store.get_transcript(record.transcript_object))
