"""Fair sharing between tenants: how long tenant B's one job waits for a slot while tenant A holds a backlog.

Tenant A's BACKLOG jobs (short sentences, tiny.en) are queued for one worker with one slot; once the first of them
runs, tenant B submits one job. B's wait is the seconds from its publish to its record's `started_at` (the worker
took it); "A's jobs first" counts A's jobs that started in between. Measured side by side on two code trees, each
with a fresh nats-server and a worker process of its own: this one (fair sharing), and a checkout of the release
before it, where a model's jobs are taken in submission order whatever the tenant:

    git worktree add /tmp/jetscribe-before bd29f7b
    .venv/bin/python -m benchmarks.fair_share --before /tmp/jetscribe-before [--backlog 200]

Jobs are published straight to NATS on their tenant's subject, as the gateway does (tenants need keys there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
from nats.aio.client import Client

from benchmarks.audio import SENTENCES
from benchmarks.report import table
from benchmarks.service import model_path, stop_jetscribe
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology, ensure_topology
from schemas import DecodeOptions, JobMessage, JobRecord, encode, names

HERE = Path(__file__).resolve().parent.parent
POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class Outcome:
    wait_s: float
    """Seconds from B's publish to B's job being taken."""
    ahead: int
    """A's jobs that started after B's publish and before B's job."""
    backlog_left: int
    """A's jobs not yet started when B's job was taken."""


async def publish(nc: Client, topology: Topology, tenant: str, n: int) -> str:
    audio = SENTENCES[n % len(SENTENCES)]
    name = f"{tenant}-{n}{audio.suffix}"
    with audio.open("rb") as f:
        await topology.audio.put(name, f)
    message = JobMessage(
        job_id=f"{tenant}-{n}",
        audio_object=name,
        model="tiny.en",
        tenant=tenant,
        options=DecodeOptions(beam_size=1, word_timestamps=False),
    )
    await nc.jetstream().publish(
        names.model_jobs_subject("tiny.en", tenant), encode(message), headers={names.MSG_ID_HEADER: message.job_id}
    )
    return message.job_id


async def started(store: JobStore, job_id: str) -> JobRecord | None:
    found = await store.get(job_id)
    return found.record if found is not None and found.record.started_at is not None else None


async def wait_started(store: JobStore, job_id: str, *, within_s: float) -> JobRecord:
    async with asyncio.timeout(within_s):
        while True:
            record = await started(store, job_id)
            if record is not None:
                return record
            await asyncio.sleep(POLL_S)


@contextlib.asynccontextmanager
async def worker_process(tree: Path, nats_url: str, data_dir: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`jetscribe worker` from the code in `tree`, one slot of tiny.en."""
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "DATA_DIR": str(data_dir),
        "JETSCRIBE_NATS_URL": nats_url,
        "WHISPER_MODEL": "tiny.en",
        "WHISPER_MODEL_PATH": str(model_path()),
        "JETSCRIBE_USE_GPU": "false",
        "JETSCRIBE_WORKER_SLOTS": "1",
        "JETSCRIBE_THREADS": str(os.cpu_count() or 1),
        "LOG_LEVEL": "warning",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "worker", cwd=tree, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        await stop_jetscribe(process)


async def measure(tree: Path, backlog: int, tmp: Path) -> Outcome:
    server = EmbeddedNats(tmp / "nats")
    await asyncio.to_thread(server.start)
    try:
        nc = await nats.connect(server.url)
        try:
            settings = Settings(nats_url=server.url, whisper_model="tiny.en", data_dir=tmp / "data")
            topology = await ensure_topology(nc.jetstream(), settings)
            store = JobStore(topology.jobs, topology.transcripts)
            a_jobs = [await publish(nc, topology, "tenant-a", n) for n in range(backlog)]
            async with worker_process(tree, server.url, tmp / "data"):
                await wait_started(store, a_jobs[0], within_s=180)
                submitted = datetime.now(UTC)
                b_job = await publish(nc, topology, "tenant-b", 0)
                b = await wait_started(store, b_job, within_s=60 + 10 * backlog)
            assert b.started_at is not None
            a_started = [record for job_id in a_jobs if (record := await started(store, job_id)) is not None]
            ahead = sum(r.started_at is not None and submitted < r.started_at < b.started_at for r in a_started)
            return Outcome(
                wait_s=(b.started_at - submitted).total_seconds(), ahead=ahead, backlog_left=backlog - len(a_started)
            )
        finally:
            await nc.close()
    finally:
        await asyncio.to_thread(server.stop)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=200, help="tenant A's queued jobs")
    parser.add_argument("--before", type=Path, help="a checkout of the code before fair sharing (bd29f7b)")
    args = parser.parse_args()
    trees = [("fair sharing (this tree)", HERE)]
    if args.before is not None:
        trees.insert(0, ("submission order (before)", args.before.resolve()))
    rows: list[tuple[str, str]] = []
    for label, tree in trees:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            outcome = await measure(tree, args.backlog, Path(tmp))
            elapsed = time.perf_counter() - start
        rows += [
            (f"{label}: B's wait for a slot", f"{outcome.wait_s:.2f} s"),
            (f"{label}: A's jobs started first", f"{outcome.ahead} of {args.backlog}"),
            (f"{label}: A's jobs still queued then", f"{outcome.backlog_left}"),
            (f"{label}: run time", f"{elapsed:.0f} s"),
        ]
    table(f"Fair sharing: tenant B's one job behind tenant A's {args.backlog} queued (tiny.en, one slot)", rows)


if __name__ == "__main__":
    asyncio.run(main())
