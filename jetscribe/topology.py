"""The JetStream topology: streams, KV buckets and object stores, created or updated idempotently.

Every component calls `ensure_topology` at start-up; whichever comes first creates everything,
later ones find it in place (or bring an older configuration up to date).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from jetscribe.config import Settings
from schemas import names

log = logging.getLogger(__name__)

STREAM_IN_USE_ERR: Final = 10058
DLQ_MAX_AGE_S: Final = 30 * 86_400
MAX_JOB_MESSAGE_BYTES: Final = 64 * 1024
MAX_RECORD_BYTES: Final = 256 * 1024
MAX_JOB_LIST_ENTRY_BYTES: Final = 1024


@dataclass(frozen=True, slots=True)
class Topology:
    """Handles on the buckets; streams are addressed by name (`schemas.names`)."""

    jobs: KeyValue
    workers: KeyValue
    idempotency: KeyValue
    job_list: KeyValue
    audio: ObjectStore
    transcripts: ObjectStore


def stream_configs(settings: Settings) -> list[api.StreamConfig]:
    """The message streams as this configuration wants them."""
    replicas = settings.replicas
    return [
        api.StreamConfig(
            name=names.JOBS_STREAM,
            description="Transcription jobs waiting for a worker",
            subjects=list(names.JOBS_STREAM_SUBJECTS),
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            discard=api.DiscardPolicy.NEW,
            max_msgs=settings.max_queued_jobs,
            max_msg_size=MAX_JOB_MESSAGE_BYTES,
            duplicate_window=settings.dedupe_window_s,
            num_replicas=replicas,
        ),
        api.StreamConfig(
            name=names.DIARIZE_STREAM,
            description="Transcribed jobs waiting for the diarization stage",
            subjects=list(names.DIARIZE_STREAM_SUBJECTS),
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            max_msg_size=MAX_JOB_MESSAGE_BYTES + MAX_JOB_MESSAGE_BYTES // 4,
            duplicate_window=settings.dedupe_window_s,
            num_replicas=replicas,
        ),
        api.StreamConfig(
            name=names.EVENTS_STREAM,
            description="Terminal job events (completed, failed, cancelled)",
            subjects=list(names.EVENTS_STREAM_SUBJECTS),
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            max_age=settings.events_max_age_s,
            duplicate_window=settings.dedupe_window_s,
            num_replicas=replicas,
        ),
        api.StreamConfig(
            name=names.DEADLETTER_STREAM,
            description="Job messages that were terminated, exhausted their deliveries or failed validation",
            subjects=list(names.DEADLETTER_STREAM_SUBJECTS),
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            max_age=DLQ_MAX_AGE_S,
            num_replicas=replicas,
        ),
        *job_list_stream_configs(settings),
    ]


def job_list_stream_configs(settings: Settings) -> list[api.StreamConfig]:
    """The two streams behind `GET /jobs`: submissions, and each job's current status.

    Entries live as long as job records; Direct Get (`allow_direct`) serves their batched reads.
    """
    return [
        _job_list_stream(
            names.JOB_LIST_STREAM,
            "Job list: one entry per submission, in submission order",
            names.JOB_LIST_STREAM_SUBJECTS,
            settings,
        ),
        _job_list_stream(
            names.JOB_STATUS_LIST_STREAM,
            "Job list by status: one entry per job, on its current status's subject",
            names.JOB_STATUS_LIST_STREAM_SUBJECTS,
            settings,
        ),
    ]


def _job_list_stream(name: str, description: str, subjects: tuple[str, ...], settings: Settings) -> api.StreamConfig:
    return api.StreamConfig(
        name=name,
        description=description,
        subjects=list(subjects),
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=settings.job_ttl_s,
        duplicate_window=min(settings.dedupe_window_s, settings.job_ttl_s),
        max_msg_size=MAX_JOB_LIST_ENTRY_BYTES,
        allow_direct=True,
        num_replicas=settings.replicas,
    )


async def ensure_topology(js: JetStreamContext, settings: Settings) -> Topology:
    """Create or update every stream and bucket; safe to call from any number of processes."""
    for config in stream_configs(settings):
        await _create_or_update(js, config)
    replicas = settings.replicas
    jobs = await _key_value(
        js,
        api.KeyValueConfig(
            bucket=names.JOBS_BUCKET,
            description="Job state, one key per job id",
            history=1,
            ttl=settings.job_ttl_s,
            max_value_size=MAX_RECORD_BYTES,
            storage=api.StorageType.FILE,
            # Direct Get: `GET /jobs` reads a page's records in one batched request (gateway/joblist/pages.py).
            direct=True,
            replicas=replicas,
        ),
    )
    workers = await workers_bucket(js, settings)
    idempotency = await _key_value(
        js,
        api.KeyValueConfig(
            bucket=names.IDEMPOTENCY_BUCKET,
            description="Idempotency-Key of POST /jobs (scoped to the caller) → request fingerprint and job id",
            history=1,
            ttl=settings.idempotency_window_s,
            storage=api.StorageType.FILE,
            replicas=replicas,
        ),
    )
    job_list = await _key_value(
        js,
        api.KeyValueConfig(
            bucket=names.JOB_LIST_BUCKET,
            description="Job id → where the job sits in the job-list streams",
            history=1,
            ttl=settings.job_ttl_s,
            max_value_size=MAX_JOB_LIST_ENTRY_BYTES,
            storage=api.StorageType.FILE,
            replicas=replicas,
        ),
    )
    audio = await _object_store(js, names.AUDIO_BUCKET, "Uploaded audio", settings)
    transcripts = await _object_store(js, names.TRANSCRIPTS_BUCKET, "Finished transcripts", settings)
    return Topology(jobs, workers, idempotency, job_list, audio, transcripts)


async def workers_bucket(js: JetStreamContext, settings: Settings) -> KeyValue:
    """The heartbeats bucket, created if missing. On a single server it is kept in memory, so a restarted
    nats-server no longer has it: workers call this again when a heartbeat finds it gone."""
    return await _key_value(
        js,
        api.KeyValueConfig(
            bucket=names.WORKERS_BUCKET,
            description="Worker heartbeats",
            history=1,
            ttl=settings.worker_heartbeat_ttl_s,
            storage=api.StorageType.MEMORY if settings.replicas == 1 else api.StorageType.FILE,
            replicas=settings.replicas,
        ),
    )


async def diarizers_bucket(js: JetStreamContext, settings: Settings) -> KeyValue:
    """The diarization workers' heartbeats bucket, created if missing (by the diarization workers; the gateway only
    reads it): kept like the workers bucket, with the same TTL."""
    return await _key_value(
        js,
        api.KeyValueConfig(
            bucket=names.DIARIZERS_BUCKET,
            description="Diarization worker heartbeats",
            history=1,
            ttl=settings.worker_heartbeat_ttl_s,
            storage=api.StorageType.MEMORY if settings.replicas == 1 else api.StorageType.FILE,
            replicas=settings.replicas,
        ),
    )


async def _create_or_update(js: JetStreamContext, config: api.StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_IN_USE_ERR:
            raise
        info = await js.stream_info(config.name or "")
        await js.update_stream(_keep_replicas(config, info.config))


def _keep_replicas(wanted: api.StreamConfig, current: api.StreamConfig) -> api.StreamConfig:
    """Never scale a stream down: one component started without JETSCRIBE_REPLICAS=3 must not
    strip a cluster's redundancy. Scaling down is an operator's deliberate act (`nats stream edit`)."""
    if (wanted.num_replicas or 1) < (current.num_replicas or 1):
        log.warning(
            "stream %s has %d replicas; keeping them although JETSCRIBE_REPLICAS=%d",
            current.name,
            current.num_replicas,
            wanted.num_replicas,
        )
        return wanted.evolve(num_replicas=current.num_replicas)
    return wanted


async def _key_value(js: JetStreamContext, config: api.KeyValueConfig) -> KeyValue:
    try:
        return await js.create_key_value(config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_IN_USE_ERR:
            raise
    await _update_backing_stream(
        js,
        names.kv_stream(config.bucket or ""),
        max_age=config.ttl,
        num_replicas=config.replicas,
        max_msg_size=config.max_value_size,
        allow_direct=config.direct,
    )
    return await js.key_value(config.bucket)


async def _object_store(js: JetStreamContext, bucket: str, description: str, settings: Settings) -> ObjectStore:
    config = api.ObjectStoreConfig(
        bucket=bucket,
        description=description,
        ttl=settings.job_ttl_s,
        storage=api.StorageType.FILE,
        replicas=settings.replicas,
    )
    try:
        return await js.create_object_store(bucket, config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_IN_USE_ERR:
            raise
    await _update_backing_stream(
        js, names.object_stream(bucket), max_age=settings.job_ttl_s, num_replicas=settings.replicas
    )
    return await js.object_store(bucket)


async def _update_backing_stream(js: JetStreamContext, stream: str, **changes: object) -> None:
    info = await js.stream_info(stream)
    config = _keep_replicas(info.config.evolve(**{k: v for k, v in changes.items() if v is not None}), info.config)
    if config.max_age and config.duplicate_window and config.duplicate_window > config.max_age:
        config = config.evolve(duplicate_window=config.max_age)
    await js.update_stream(config)
