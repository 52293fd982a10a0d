"""Every NATS name jetscribe uses: subjects, streams, buckets, durable consumers, and the names
JetStream itself gives the streams behind key-value and object-store buckets.

Nothing else in the code base spells a subject, stream or bucket name; producers and consumers in
other languages find the same names in `docs/nats.md`.
"""

import re
from typing import Final, Literal

SUBJECT_ROOT: Final = "jetscribe"

# Job ids become a token of subjects and a KV key, so they keep to characters valid in both.
JOB_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
JOB_ID_RE: Final = re.compile(JOB_ID_PATTERN)

# A tenant's name becomes a token of the job-list subjects, so it keeps to the same characters.
TENANT_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
TENANT_RE: Final = re.compile(TENANT_PATTERN)
DEFAULT_TENANT: Final = "default"
"""The tenant of a job whose message names none, of every job while API keys are off, and of the keys in
`JETSCRIBE_API_KEYS`."""

# Job submission: a work-queue stream drained by one durable consumer shared by all workers.
JOBS_STREAM: Final = "JETSCRIBE_JOBS"
JOBS_SUBJECT: Final = "jetscribe.jobs.submit"
JOBS_STREAM_SUBJECTS: Final = ("jetscribe.jobs.>",)
WORKERS_CONSUMER: Final = "workers"

# Terminal events (completed / failed / cancelled), kept for other systems to consume.
EVENTS_STREAM: Final = "JETSCRIBE_EVENTS"
EVENTS_STREAM_SUBJECTS: Final = ("jetscribe.events.>",)
WEBHOOKS_CONSUMER: Final = "webhooks"

EventKind = Literal["completed", "failed", "cancelled"]


def event_subject(kind: EventKind, job_id: str) -> str:
    """Subject of a job's terminal event, e.g. `jetscribe.events.completed.<job_id>`."""
    return f"jetscribe.events.{kind}.{job_id}"


def job_events_filter(job_id: str) -> str:
    """Wildcard matching every terminal event of one job."""
    return f"jetscribe.events.*.{job_id}"


# Dead letters: messages that exhausted their deliveries or were terminated, plus job messages
# that failed validation, captured so a dead-letter handler can mark their jobs failed.
DEADLETTER_STREAM: Final = "JETSCRIBE_DLQ"
DEADLETTER_CONSUMER: Final = "deadletters"
INVALID_JOB_SUBJECT: Final = "jetscribe.deadletter.invalid"
MAX_DELIVERIES_ADVISORY: Final = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.{WORKERS_CONSUMER}"
TERMINATED_ADVISORY: Final = f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{JOBS_STREAM}.{WORKERS_CONSUMER}"
DEADLETTER_STREAM_SUBJECTS: Final = (MAX_DELIVERIES_ADVISORY, TERMINATED_ADVISORY, INVALID_JOB_SUBJECT)

# Core (not persisted) subjects: frequent progress, and cancel requests for running jobs.
PROGRESS_WILDCARD: Final = "jetscribe.progress.*"
CANCEL_WILDCARD: Final = "jetscribe.cancel.*"


def progress_subject(job_id: str) -> str:
    """Core subject carrying a job's progress events (at-most-once; KV holds the truth)."""
    return f"jetscribe.progress.{job_id}"


def cancel_subject(job_id: str) -> str:
    """Core subject on which a cancel request for a running job reaches its worker."""
    return f"jetscribe.cancel.{job_id}"


# The job list (`GET /jobs`): two streams read newest first by sequence, so a page costs what the
# page holds, not what the buckets keep. One message per submission in the submissions stream; one
# live message per job, on its current status's subject, in the status stream. Subjects carry the
# job's tenant as a token and no job id, so a tenant's list is always one literal subject, which JetStream
# counts and seeks without a scan; an admin's list of every tenant reads the wildcard ALL_TENANTS.
ALL_TENANTS: Final = "*"
JOB_LIST_STREAM: Final = "JETSCRIBE_JOB_LIST"
JOB_LIST_STREAM_SUBJECTS: Final = ("jetscribe.joblist.submitted.*",)
JOB_STATUS_LIST_STREAM: Final = "JETSCRIBE_JOB_STATUS_LIST"
JOB_STATUS_LIST_STREAM_SUBJECTS: Final = ("jetscribe.joblist.status.*.*",)
JOB_LIST_INDEXER_CONSUMER: Final = "job-list"
"""Durable consumer on the jobs bucket's stream: every change of a job record updates the status stream."""


def submitted_subject(tenant: str) -> str:
    """Subject of the submissions of `tenant`, in submission order: `jetscribe.joblist.submitted.<tenant>`."""
    return f"jetscribe.joblist.submitted.{tenant}"


def status_list_subject(tenant: str, status: str) -> str:
    """Subject of the jobs of `tenant` now in `status`: `jetscribe.joblist.status.<tenant>.<status>`."""
    return f"jetscribe.joblist.status.{tenant}.{status}"


# Key-value buckets.
JOBS_BUCKET: Final = "jetscribe_jobs"
WORKERS_BUCKET: Final = "jetscribe_workers"
IDEMPOTENCY_BUCKET: Final = "jetscribe_idempotency"
JOB_LIST_BUCKET: Final = "jetscribe_job_list"
"""Job id → where the job sits in the job-list streams (its `JobListPlace`)."""

# Object-store buckets.
AUDIO_BUCKET: Final = "jetscribe_audio"
TRANSCRIPTS_BUCKET: Final = "jetscribe_transcripts"


def transcript_object(job_id: str) -> str:
    """Name of a finished job's transcript (JSON list of segments) in the transcripts bucket."""
    return f"{job_id}.json"


# JetStream's own layout of buckets (nats-server's KV and object-store conventions, ADR-8 and ADR-20).


def kv_stream(bucket: str) -> str:
    """The stream that backs key-value bucket `bucket`."""
    return f"KV_{bucket}"


def kv_subject(bucket: str, key: str = ">") -> str:
    """The subject of `key` in key-value bucket `bucket` (`>` matches every key)."""
    return f"$KV.{bucket}.{key}"


def object_stream(bucket: str) -> str:
    """The stream that backs object-store bucket `bucket`."""
    return f"OBJ_{bucket}"


def object_chunk_subject(bucket: str, nuid: str = ">") -> str:
    """The subject carrying the chunks of the object stored under `nuid` (`>` matches every object's)."""
    return f"$O.{bucket}.C.{nuid}"


def object_meta_subject(bucket: str, encoded_name: str) -> str:
    """The subject of an object's meta message; `encoded_name` is its name in URL-safe base64."""
    return f"$O.{bucket}.M.{encoded_name}"


def direct_get_subject(stream: str) -> str:
    """JetStream's Direct Get API of `stream` (ADR-31): batched reads by sequence and subject."""
    return f"$JS.API.DIRECT.GET.{stream}"


# Headers.
MSG_ID_HEADER: Final = "Nats-Msg-Id"


def handback_msg_id(job_id: str, stream_seq: int) -> str:
    """`Nats-Msg-Id` of a job message a worker publishes again when it hands the job back on shutdown:
    unique per handed-back delivery (its stream sequence), so a retried hand-back is stored once."""
    return f"{job_id}.handback.{stream_seq}"
