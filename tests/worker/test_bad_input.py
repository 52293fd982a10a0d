"""Bad input fails its job at once with an error that says what is wrong; the worker carries on."""

from __future__ import annotations

import asyncio
import os

import pytest
from nats.js import JetStreamContext

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import JobMessage, names
from schemas.codec import decode_invalid_notice
from tests.worker.jobs import AUDIO, TEXTS, jobs_left, new_job_id, publish_job, recall, submit, terminal_event
from worker.service import Worker


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("not_audio.txt", "it is not an audio or video file ffmpeg can read"),
        ("empty.wav", "the audio file is empty (0 bytes)"),
        ("video_no_audio.mp4", "it contains no audio stream"),
        ("zero_length.wav", "it holds no samples (zero-length audio)"),
    ],
)
async def test_undecodable_audio_fails_at_once_with_its_reason(
    name: str, complaint: str, worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await submit(js, topology, AUDIO / name)

    event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error is not None and complaint in event.job.error
    record = (await job_store.require(job_id)).record
    assert record.status == "failed" and record.attempts == 1
    assert await jobs_left(js) == 0


async def test_truncated_audio_is_transcribed_as_far_as_it_goes(
    worker: Worker, js: JetStreamContext, topology: Topology
) -> None:
    whole = await submit(js, topology, AUDIO / "en1.mp3")
    truncated = await submit(js, topology, AUDIO / "truncated.mp3")

    whole_event = await terminal_event(js, whole)
    event = await terminal_event(js, truncated)

    assert event.type == "completed", event.job.error
    assert event.job.duration_secs is not None and whole_event.job.duration_secs is not None
    assert 0 < event.job.duration_secs < whole_event.job.duration_secs


async def test_missing_audio_object_fails_naming_object_and_bucket(worker: Worker, js: JetStreamContext) -> None:
    job_id = new_job_id()
    await publish_job(js, JobMessage(job_id=job_id, audio_object="nowhere.wav"))

    event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error == "audio object 'nowhere.wav' does not exist in bucket jetscribe_audio"


async def test_temp_files_are_removed_after_every_job(
    settings: Settings, worker: Worker, js: JetStreamContext, topology: Topology
) -> None:
    good = await submit(js, topology, AUDIO / "en1.ogg")
    bad = await submit(js, topology, AUDIO / "not_audio.txt")

    assert (await terminal_event(js, good)).type == "completed"
    assert (await terminal_event(js, bad)).type == "failed"

    assert settings.work_dir is not None
    assert await asyncio.to_thread(os.listdir, settings.work_dir) == []


async def test_invalid_message_is_dead_lettered_while_the_next_job_completes(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    await js.publish(names.JOBS_SUBJECT, b'{"job_id": "bad-job", "audio_object": 5}')
    await js.publish(names.JOBS_SUBJECT, b"\x00 not json at all")
    good = await submit(js, topology, AUDIO / "en4.wav")

    bad_event = await terminal_event(js, "bad-job")
    good_event = await terminal_event(js, good)

    assert bad_event.type == "failed"
    assert bad_event.job.error is not None
    assert bad_event.job.error.startswith("the job message is invalid: invalid job message: Expected `str | null`")
    assert "audio_object" in bad_event.job.error
    assert (await job_store.require("bad-job")).record.status == "failed"
    assert good_event.type == "completed"
    segments = await job_store.get_transcript(good_event.transcript_object or "")
    assert recall(TEXTS["en4"], " ".join(s.text for s in segments)) >= 0.7
    info = await js.stream_info(names.DEADLETTER_STREAM, subjects_filter=names.INVALID_JOB_SUBJECT)
    assert (info.state.subjects or {}).get(names.INVALID_JOB_SUBJECT) == 2
    last_notice = await js.get_last_msg(names.DEADLETTER_STREAM, names.INVALID_JOB_SUBJECT)
    last = decode_invalid_notice(last_notice.data or b"")
    assert last.job_id is None
    assert "not valid JSON" in last.reason
    assert await jobs_left(js) == 0


async def test_message_failing_a_rule_is_dead_lettered_with_the_rule(worker: Worker, js: JetStreamContext) -> None:
    await js.publish(
        names.JOBS_SUBJECT, b'{"job_id": "both-sources", "audio_object": "a.wav", "audio_url": "https://x.org/a"}'
    )

    event = await terminal_event(js, "both-sources")

    assert event.type == "failed"
    assert event.job.error is not None
    assert "exactly one of `audio_object` and `audio_url` must be given" in event.job.error
