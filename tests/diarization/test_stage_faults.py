"""The diarization stage under faults: cancel while a job waits for or runs in it, a diarization worker killed
mid-job (another completes the job)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import CancelRequest, JobRecord, encode, names
from tests.diarization.conftest import StartDiarizer
from tests.worker.jobs import submit, terminal_event
from tests.worker.process import jetscribe_command, worker_env
from worker.service import Worker

WITHIN_S: Final = 120.0


async def status_reached(
    job_store: JobStore, job_id: str, status: str, *, worker_prefix: str | None = None
) -> JobRecord:
    """The job's record once it has `status` (and, if given, a `worker_id` starting with `worker_prefix`)."""
    async with asyncio.timeout(WITHIN_S):
        while True:
            found = await job_store.get(job_id)
            if found is not None and found.record.status == status:
                if worker_prefix is None or (found.record.worker_id or "").startswith(worker_prefix):
                    return found.record
            await asyncio.sleep(0.1)


async def cancel_as_the_gateway_does(nc: Client, job_store: JobStore, job_id: str) -> None:
    """What `DELETE /jobs/{id}` does to a `running` or `diarizing` job: `cancel_requested`, then a cancel request."""

    def request(record: JobRecord) -> JobRecord:
        return msgspec.structs.replace(record, cancel_requested=True)

    await job_store.transition(job_id, request)
    await nc.publish(names.cancel_subject(job_id), encode(CancelRequest(job_id=job_id, requested_at=datetime.now(UTC))))
    await nc.flush()


async def test_a_job_cancelled_while_it_waits_for_diarization_ends_cancelled(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    worker: Worker,
    start_diarizer: StartDiarizer,
    conversation_wav: Path,
) -> None:
    job_id = await submit(js, topology, conversation_wav, language="en", options={"diarize": True})
    await status_reached(job_store, job_id, "diarizing")
    await cancel_as_the_gateway_does(nc, job_store, job_id)

    async with start_diarizer():
        event = await terminal_event(js, job_id, within_s=WITHIN_S)

    assert event.type == "cancelled"
    assert (await job_store.require(job_id)).record.speakers is None


async def test_a_job_cancelled_while_it_is_diarized_ends_cancelled(
    nc: Client,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    worker: Worker,
    start_diarizer: StartDiarizer,
    conversation_wav: Path,
) -> None:
    job_id = await submit(js, topology, conversation_wav, language="en", options={"diarize": True})
    await status_reached(job_store, job_id, "diarizing")
    # The diarization worker claims the job as it starts: its id goes into the record.
    async with start_diarizer() as diarizer:
        await status_reached(job_store, job_id, "diarizing", worker_prefix=diarizer.worker_id)
        await cancel_as_the_gateway_does(nc, job_store, job_id)
        event = await terminal_event(js, job_id, within_s=WITHIN_S)

    assert event.type == "cancelled"
    assert (await js.stream_info(names.DIARIZE_STREAM)).state.messages == 0


async def test_a_job_whose_diarization_worker_is_killed_is_completed_by_another(
    settings: Settings,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    worker: Worker,
    start_diarizer: StartDiarizer,
    conversation_wav: Path,
    tmp_path: Path,
) -> None:
    env = worker_env(settings, JETSCRIBE_ACK_WAIT_S="3", JETSCRIBE_IN_PROGRESS_INTERVAL_S="1")
    with (tmp_path / "diarizer.log").open("wb") as log:
        doomed = await asyncio.create_subprocess_exec(
            *jetscribe_command(), "diarizer", env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        job_id = await submit(js, topology, conversation_wav, language="en", options={"diarize": True})
        async with asyncio.timeout(WITHIN_S):
            while True:
                found = await job_store.get(job_id)
                if found is not None and (found.record.worker_id or "").endswith("-diarizer"):
                    break  # claimed by the diarization process
                await asyncio.sleep(0.05)
        doomed.send_signal(signal.SIGKILL)
    finally:
        if doomed.returncode is None:
            doomed.kill()
        await doomed.wait()

    # Its delivery is never acked: after ack_wait (3 s here) the consumer gives it to this diarization worker.
    async with start_diarizer(ack_wait_s=3.0, in_progress_interval_s=1.0) as survivor:
        event = await terminal_event(js, job_id, within_s=WITHIN_S)
        record = (await job_store.require(job_id)).record

    assert event.type == "completed", event.job.error
    assert record.worker_id == survivor.worker_id
    assert record.speakers and len(record.speakers) == 2
