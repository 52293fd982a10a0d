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

# A tenant's name becomes a token of job and job-list subjects, so it keeps to the same characters.
TENANT_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
TENANT_RE: Final = re.compile(TENANT_PATTERN)
DEFAULT_TENANT: Final = "default"
"""The tenant of a job whose message names none, of every job while API keys are off, and of the keys in
`JETSCRIBE_API_KEYS`."""

# Job submission: one work-queue stream. Each model has its own subjects, one per tenant,
# `jetscribe.jobs.<model token>.<tenant>`, and each (model, tenant) its own durable consumer,
# `workers-<model token>~<tenant>`, shared by the workers that serve the model: a worker only ever receives
# jobs it can run, and a free slot chooses which tenant it serves next (worker/fairshare.py). The subject
# that named no model (`jetscribe.jobs.submit`) still takes jobs: the `router` consumer moves each onto its
# model's subject (see worker/router.py).
JOBS_STREAM: Final = "JETSCRIBE_JOBS"
JOBS_SUBJECT: Final = "jetscribe.jobs.submit"
"""Jobs for the model their `model` names, or the service's default model: routed, not run, from here."""
JOBS_STREAM_SUBJECTS: Final = ("jetscribe.jobs.>",)
ALL_MODEL_JOBS_FILTER: Final = "jetscribe.jobs.*.*"
"""Every model's job subjects, `jetscribe.jobs.<model token>.<tenant>` (not `jetscribe.jobs.submit`)."""
ROUTER_CONSUMER: Final = "router"
"""Durable consumer of `JOBS_SUBJECT`, shared by every worker: moves each job onto its model's subject."""
MODEL_CONSUMER_PREFIX: Final = "workers-"
TENANT_CONSUMER_SEPARATOR: Final = "~"
"""Between the model token and the tenant in a consumer's name. Neither a model token nor a tenant contains
it (both keep to A–Z a–z 0–9 `_` `-`), so the name is unique to its (model, tenant); nats-server refuses only
`.`, `*`, `>`, white space and path separators in names."""
LEGACY_WORKERS_CONSUMER: Final = "workers"
"""The one unfiltered consumer of releases before per-model routing; a worker deletes it (it overlaps them all)."""

# A model name becomes a subject token and part of a durable consumer's name, whose safe characters are
# A–Z a–z 0–9 `_` `-` (NATS ADR-6, "restricted-term"). Names keep to those and `.`; a dot becomes `__`.
# So that the encoding is one-to-one, a name has no `__` and no `_` beside a `.`: `tiny.en` → `tiny__en`,
# `base-q5_0` → `base-q5_0`, `large-v3-turbo` unchanged.
MODEL_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""The characters and length of a model name; `model_token` also refuses `__`, `_.` and `._`."""
MODEL_NAME_RE: Final = re.compile(MODEL_NAME_PATTERN)
_AMBIGUOUS: Final = ("__", "_.", "._")
MODEL_NAME_RULE: Final = (
    "1–64 characters of A–Z, a–z, 0–9, `.`, `_` and `-`, starting with a letter or digit, with no `__` and no `_` "
    "next to a `.` (a model name becomes part of NATS subjects and consumer names)"
)
_DOT_TOKEN: Final = "__"


def model_token(model: str) -> str:
    """The subject token of model `model` (`tiny.en` → `tiny__en`).

    Raises ValueError for a name that breaks `MODEL_NAME_RULE`.
    """
    if not MODEL_NAME_RE.fullmatch(model) or any(pair in model for pair in _AMBIGUOUS):
        raise ValueError(f"model name {model!r} cannot be used: a model name is {MODEL_NAME_RULE}")
    return model.replace(".", _DOT_TOKEN)


def model_of_token(token: str) -> str:
    """The model name whose subject token is `token` (the inverse of `model_token`)."""
    return token.replace(_DOT_TOKEN, ".")


def model_jobs_subject(model: str, tenant: str | None = None) -> str:
    """Where a job of `tenant` (None: `DEFAULT_TENANT`) for `model` is published:
    `jetscribe.jobs.<model token>.<tenant>`; the tenant token is what fair sharing rotates over."""
    return f"jetscribe.jobs.{model_token(model)}.{tenant or DEFAULT_TENANT}"


def model_jobs_filter(model: str) -> str:
    """Every tenant's job subject of `model`: `jetscribe.jobs.<model token>.*`."""
    return f"jetscribe.jobs.{model_token(model)}.*"


def place_of_jobs_subject(subject: str) -> tuple[str, str] | None:
    """(model, tenant) of a job subject `jetscribe.jobs.<model token>.<tenant>`; None for any other subject."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[:2] != ["jetscribe", "jobs"] or not TENANT_RE.fullmatch(parts[3]):
        return None
    model = model_of_token(parts[2])
    try:
        model_token(model)
    except ValueError:
        return None
    return model, parts[3]


def tenant_consumer(model: str, tenant: str) -> str:
    """The durable consumer of `tenant`'s jobs for `model`, shared by the workers that serve `model`:
    `workers-<model token>~<tenant>`, filtered on `model_jobs_subject(model, tenant)`."""
    return f"{MODEL_CONSUMER_PREFIX}{model_token(model)}{TENANT_CONSUMER_SEPARATOR}{tenant}"


def legacy_model_consumer(model: str) -> str:
    """The one consumer of `model` in releases before fair sharing, `workers-<model token>`, filtered on every
    tenant's subjects: it overlaps the per-tenant consumers, so a worker of `model` deletes it."""
    return MODEL_CONSUMER_PREFIX + model_token(model)


# The diarization stage: a job with `diarize`, once transcribed, waits in its own work-queue stream for a
# diarization worker (`jetscribe diarizer`); every diarization worker shares one durable consumer.
DIARIZE_STREAM: Final = "JETSCRIBE_DIARIZE"
DIARIZE_STREAM_SUBJECTS: Final = ("jetscribe.diarize.>",)
DIARIZERS_CONSUMER: Final = "diarizers"
"""Durable consumer of `DIARIZE_STREAM`, shared by every diarization worker."""


def diarize_subject(tenant: str | None = None) -> str:
    """Where a transcribed job of `tenant` (None: `DEFAULT_TENANT`) waits for diarization:
    `jetscribe.diarize.<tenant>`."""
    return f"jetscribe.diarize.{tenant or DEFAULT_TENANT}"


def diarize_msg_id(job_id: str) -> str:
    """`Nats-Msg-Id` of a job's diarization message: one per job, so a whisper worker that publishes it again
    (its delivery redelivered after a crash) queues it once."""
    return f"{job_id}.diarize"


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
DIARIZE_DEADLETTER_CONSUMER: Final = "diarize-deadletters"
"""Durable consumer of the diarization stage's MAX_DELIVERIES advisories, shared by every diarization worker."""
INVALID_JOB_SUBJECT: Final = "jetscribe.deadletter.invalid"
# Advisories of every consumer of the jobs stream: the router and each (model, tenant)'s workers.
MAX_DELIVERIES_ADVISORY: Final = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.*"
TERMINATED_ADVISORY: Final = f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{JOBS_STREAM}.*"
# The diarization stage's consumer runs out of deliveries the same way.
DIARIZE_MAX_DELIVERIES_ADVISORY: Final = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{DIARIZE_STREAM}.*"
DIARIZE_TERMINATED_ADVISORY: Final = f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{DIARIZE_STREAM}.*"
DEADLETTER_STREAM_SUBJECTS: Final = (
    MAX_DELIVERIES_ADVISORY,
    TERMINATED_ADVISORY,
    INVALID_JOB_SUBJECT,
    DIARIZE_MAX_DELIVERIES_ADVISORY,
    DIARIZE_TERMINATED_ADVISORY,
)

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
DIARIZERS_BUCKET: Final = "jetscribe_diarizers"
"""Heartbeats of the diarization workers (`schemas.DiarizerHeartbeat`), one key per worker id, with a TTL."""
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


def consumer_next_subject(stream: str, consumer: str) -> str:
    """JetStream's pull API of `consumer` on `stream` (ADR-13): a request for its next message(s)."""
    return f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"


def direct_get_subject(stream: str) -> str:
    """JetStream's Direct Get API of `stream` (ADR-31): batched reads by sequence and subject."""
    return f"$JS.API.DIRECT.GET.{stream}"


# Headers.
MSG_ID_HEADER: Final = "Nats-Msg-Id"


def routed_msg_id(job_id: str, stream_seq: int) -> str:
    """`Nats-Msg-Id` of a job the router moves from `JOBS_SUBJECT` onto its model's subject: unique per
    routed message (its stream sequence), so a routing retried after a crash is stored once."""
    return f"{job_id}.routed.{stream_seq}"


def handback_msg_id(job_id: str, stream_seq: int) -> str:
    """`Nats-Msg-Id` of a job message a worker publishes again when it hands the job back on shutdown:
    unique per handed-back delivery (its stream sequence), so a retried hand-back is stored once."""
    return f"{job_id}.handback.{stream_seq}"
