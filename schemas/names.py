"""Every NATS name jetscribe uses: subjects, streams, buckets, durable consumers.

Nothing else in the code base spells a subject or bucket name; producers and consumers in other
languages find the same names in `docs/nats.md`.
"""

from typing import Final, Literal

SUBJECT_ROOT: Final = "jetscribe"

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


# Key-value buckets.
JOBS_BUCKET: Final = "jetscribe_jobs"
WORKERS_BUCKET: Final = "jetscribe_workers"
IDEMPOTENCY_BUCKET: Final = "jetscribe_idempotency"

# Object-store buckets.
AUDIO_BUCKET: Final = "jetscribe_audio"
TRANSCRIPTS_BUCKET: Final = "jetscribe_transcripts"


def transcript_object(job_id: str) -> str:
    """Name of a finished job's transcript (JSON list of segments) in the transcripts bucket."""
    return f"{job_id}.json"


# Headers.
MSG_ID_HEADER: Final = "Nats-Msg-Id"
