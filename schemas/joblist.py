"""The job list's own messages: entries of the job-list streams and the place of each job in them.

`GET /jobs` reads the streams newest first by sequence (see `schemas.names`); the place, kept in the
`jetscribe_job_list` bucket under the job id, says which status entry is the job's live one, so a
status change can replace it.
"""

import msgspec

from schemas.job import JobStatus


class JobListEntry(msgspec.Struct, frozen=True):
    """One message of `JETSCRIBE_JOB_LIST` or `JETSCRIBE_JOB_STATUS_LIST`: the job it stands for."""

    job_id: str


class JobListPlace(msgspec.Struct, kw_only=True):
    """Where a job sits in the job-list streams (value of `jetscribe_job_list` under the job id)."""

    tenant: str
    """The job's tenant: a token of its subjects."""
    submitted_seq: int
    """Sequence of the job's entry in `JETSCRIBE_JOB_LIST`."""
    status: JobStatus
    """The status whose subject holds the job's live entry in `JETSCRIBE_JOB_STATUS_LIST`."""
    status_seq: int
    """Sequence of that entry."""
    revision: int = 0
    """Revision of the job record `status` was read from; 0 when written at submission, before the record."""
