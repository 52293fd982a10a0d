"""How many jobs each tenant has in a status, counted by JetStream from the job list's status subjects.

A tenant's live status entries sit on one literal subject (`schemas.names.status_list_subject`), so a count
is the stream's own per-subject total: one request, however many jobs the streams hold. A count may include an
entry a crashed status move left behind until the reader's check skips it and the entry expires (see
`gateway.joblist.index`), and trails a status change by the indexer's lag (well under a second).
"""

from __future__ import annotations

from nats.js import JetStreamContext

from schemas import JobStatus, names


async def jobs_by_tenant(js: JetStreamContext, status: JobStatus, tenant: str = names.ALL_TENANTS) -> dict[str, int]:
    """Tenant → jobs in `status` (tenants with none are absent); `tenant` narrows the count to one tenant."""
    subject = names.status_list_subject(tenant, status)
    info = await js.stream_info(names.JOB_STATUS_LIST_STREAM, subjects_filter=subject)
    counts: dict[str, int] = {}
    for listed, count in (info.state.subjects or {}).items():
        # jetscribe.joblist.status.<tenant>.<status>
        counts[listed.split(".")[-2]] = count
    return counts
