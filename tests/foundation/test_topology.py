"""ensure_topology against a real nats-server: what it creates, idempotence, updates, back-pressure, dedupe."""

from __future__ import annotations

import io

import msgspec
import pytest
from nats.js import JetStreamContext, api
from nats.js.errors import APIError

from jetscribe.config import Settings
from jetscribe.topology import Topology, ensure_topology
from schemas import JobMessage, encode, names

BACKING_STREAMS = (
    names.kv_stream(names.JOBS_BUCKET),
    names.kv_stream(names.WORKERS_BUCKET),
    names.kv_stream(names.IDEMPOTENCY_BUCKET),
    names.object_stream(names.AUDIO_BUCKET),
    names.object_stream(names.TRANSCRIPTS_BUCKET),
)
MESSAGE_STREAMS = (names.JOBS_STREAM, names.EVENTS_STREAM, names.DEADLETTER_STREAM)
STREAM_FULL_ERR = 10077


def job(job_id: str) -> bytes:
    return encode(JobMessage(job_id=job_id, audio_object=job_id))


async def test_the_jobs_stream_is_a_file_backed_work_queue_with_back_pressure(
    js: JetStreamContext, topology: Topology, settings: Settings
) -> None:
    config = (await js.stream_info(names.JOBS_STREAM)).config

    assert config.subjects == list(names.JOBS_STREAM_SUBJECTS)
    assert config.retention == api.RetentionPolicy.WORK_QUEUE
    assert config.storage == api.StorageType.FILE
    assert config.discard == api.DiscardPolicy.NEW
    assert config.max_msgs == settings.max_queued_jobs
    assert config.duplicate_window == settings.dedupe_window_s


async def test_the_events_stream_keeps_events_for_their_max_age(
    js: JetStreamContext, topology: Topology, settings: Settings
) -> None:
    config = (await js.stream_info(names.EVENTS_STREAM)).config

    assert config.subjects == list(names.EVENTS_STREAM_SUBJECTS)
    assert config.retention == api.RetentionPolicy.LIMITS
    assert config.max_age == settings.events_max_age_s


async def test_the_dead_letter_stream_captures_both_stages_advisories_and_invalid_jobs(
    js: JetStreamContext, topology: Topology
) -> None:
    config = (await js.stream_info(names.DEADLETTER_STREAM)).config

    assert set(config.subjects or []) == {
        names.MAX_DELIVERIES_ADVISORY,
        names.TERMINATED_ADVISORY,
        names.INVALID_JOB_SUBJECT,
        names.DIARIZE_MAX_DELIVERIES_ADVISORY,
        names.DIARIZE_TERMINATED_ADVISORY,
    }


async def test_buckets_have_the_configured_time_to_live(
    js: JetStreamContext, topology: Topology, settings: Settings
) -> None:
    assert (await topology.jobs.status()).ttl == settings.job_ttl_s
    assert (await topology.workers.status()).ttl == settings.worker_heartbeat_ttl_s
    assert (await js.stream_info(names.object_stream(names.AUDIO_BUCKET))).config.max_age == settings.job_ttl_s


async def test_a_single_node_topology_has_one_replica_everywhere(js: JetStreamContext, topology: Topology) -> None:
    for stream in MESSAGE_STREAMS + BACKING_STREAMS:
        assert (await js.stream_info(stream)).config.num_replicas == 1, stream


async def test_ensuring_the_topology_again_keeps_every_message_and_value(
    js: JetStreamContext, topology: Topology, settings: Settings
) -> None:
    await js.publish(names.JOBS_SUBJECT, job("kept"))
    await topology.jobs.put("kept", b"state")
    await topology.audio.put("kept", io.BytesIO(b"audio bytes"))

    again = await ensure_topology(js, settings)

    assert (await js.stream_info(names.JOBS_STREAM)).state.messages == 1
    assert (await again.jobs.get("kept")).value == b"state"
    assert (await again.audio.get("kept")).data == b"audio bytes"


async def test_changed_settings_update_the_limits_in_place(
    js: JetStreamContext, topology: Topology, settings: Settings
) -> None:
    await topology.jobs.put("kept", b"state")
    changed = msgspec.structs.replace(
        settings,
        max_queued_jobs=50,
        dedupe_window_s=30.0,
        events_max_age_s=3600.0,
        job_ttl_s=7200.0,
        worker_heartbeat_ttl_s=9.0,
    )

    updated = await ensure_topology(js, changed)

    jobs = (await js.stream_info(names.JOBS_STREAM)).config
    assert (jobs.max_msgs, jobs.duplicate_window) == (50, 30.0)
    assert (await js.stream_info(names.EVENTS_STREAM)).config.max_age == 3600.0
    assert (await updated.jobs.status()).ttl == 7200.0
    assert (await updated.workers.status()).ttl == 9.0
    assert (await js.stream_info(names.object_stream(names.TRANSCRIPTS_BUCKET))).config.max_age == 7200.0
    assert (await updated.jobs.get("kept")).value == b"state"


async def test_a_full_jobs_stream_refuses_new_jobs(
    js: JetStreamContext, topology: Topology, settings: Settings
) -> None:
    await ensure_topology(js, msgspec.structs.replace(settings, max_queued_jobs=2))
    await js.publish(names.JOBS_SUBJECT, job("one"))
    await js.publish(names.JOBS_SUBJECT, job("two"))

    with pytest.raises(APIError) as caught:
        await js.publish(names.JOBS_SUBJECT, job("three"))

    assert caught.value.err_code == STREAM_FULL_ERR


async def test_a_job_published_twice_with_the_same_msg_id_is_queued_once(
    js: JetStreamContext, topology: Topology
) -> None:
    headers = {names.MSG_ID_HEADER: "job-1"}
    first = await js.publish(names.JOBS_SUBJECT, job("job-1"), headers=headers)

    second = await js.publish(names.JOBS_SUBJECT, job("job-1"), headers=headers)

    assert second.duplicate
    assert second.seq == first.seq
    assert (await js.stream_info(names.JOBS_STREAM)).state.messages == 1
