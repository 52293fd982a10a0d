"""`GET /jobs` with 100,000 job records kept: latency of a page of 50, newest first, by status and deep in the list.

    .venv/bin/python -m benchmarks.job_list [--records 100000] [--requests 200] [--deep-pages 200]

Records are written straight into the jobs bucket (97 % done, 2 % failed, 1 % cancelled, 20 queued, 2 running,
one second apart), then `jetscribe gateway` starts beside the embedded NATS server and is asked for pages over
HTTP, one request at a time. A gateway with the job-list index first lists the records it finds (its indexer
reads the bucket from the start); the time until the last of them is listed is reported as the backfill. Deep
pages continue from cursors collected by one walk through the whole list (500 per page).

For the figures before the index, run this script from a checkout of the earlier commit (`git archive COMMIT |
tar -x -C DIR`, copy this file into DIR/benchmarks, run it from DIR with `--requests 2 --deep-pages 0
--request-timeout-s 600`: there a page takes longer than the gateway's default 30 s limit).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from benchmarks.report import percentile, table
from benchmarks.service import free_port, jetscribe_process, peak_rss_mb, service_env
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.topology import ensure_topology
from schemas import JobRecord, JobStatus, JobTimings, encode

QUEUED = 20
RUNNING = 2
PAGE = 50


def status_of(index: int, records: int) -> JobStatus:
    if index >= records - RUNNING:
        return "running"
    if index >= records - RUNNING - QUEUED:
        return "queued"
    if index % 50 == 0:
        return "failed"
    if index % 97 == 0:
        return "cancelled"
    return "done"


def record(index: int, records: int, start: datetime) -> JobRecord:
    status = status_of(index, records)
    created = start + timedelta(seconds=index)
    finished = status in ("done", "failed", "cancelled")
    return JobRecord(
        id=f"bench-{index:06d}",
        status=status,
        task="transcribe",
        language=None,
        audio_object=f"bench-{index:06d}",
        detected_language="en" if status == "done" else None,
        duration_secs=42.5 if status == "done" else None,
        progress=100 if status == "done" else 0,
        error="the audio could not be decoded: no audio stream" if status == "failed" else None,
        created_at=created,
        started_at=created + timedelta(seconds=1) if status != "queued" else None,
        completed_at=created + timedelta(seconds=9) if finished else None,
        worker_id="bench-worker" if status != "queued" else None,
        model="tiny.en",
        attempts=1,
        transcript_object=f"bench-{index:06d}.json" if status == "done" else None,
        timings=JobTimings(fetch_s=0.01, decode_s=0.2, wait_s=0.0, transcribe_s=8.1) if status == "done" else None,
    )


async def write_records(url: str, records: int) -> float:
    settings = Settings(nats_url=url)
    nc = await connect(settings, url, name="bench-records")
    try:
        topology = await ensure_topology(nc.jetstream(), settings)
        start = datetime.now(UTC) - timedelta(seconds=records + 60)
        began = time.perf_counter()
        window = 512
        for offset in range(0, records, window):
            await asyncio.gather(
                *(
                    topology.jobs.create(f"bench-{i:06d}", encode(record(i, records, start)))
                    for i in range(offset, min(offset + window, records))
                )
            )
        return time.perf_counter() - began
    finally:
        await nc.close()


async def get_page(session: aiohttp.ClientSession, url: str) -> tuple[float, dict]:
    began = time.perf_counter()
    async with session.get(url) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"GET {url} answered {response.status}: {body}")
    return time.perf_counter() - began, body


async def wait_listed(session: aiohttp.ClientSession, base: str, timeout_s: float = 900.0) -> float:
    """Seconds until the running jobs (the last records written) are listed: the whole bucket is, then."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout_s:
        _, body = await get_page(session, f"{base}/jobs?status=running")
        if len(body["jobs"]) == RUNNING:
            return time.perf_counter() - began
        await asyncio.sleep(0.5)
    raise TimeoutError("the job list did not list every record")


async def collect_cursors(session: aiohttp.ClientSession, base: str) -> tuple[list[str], int]:
    cursors: list[str] = []
    listed = 0
    url = f"{base}/jobs?limit=500"
    while True:
        _, body = await get_page(session, url)
        listed += len(body["jobs"])
        if body["next_cursor"] is None:
            return cursors, listed
        cursors.append(body["next_cursor"])
        url = f"{base}/jobs?limit=500&cursor={body['next_cursor']}"


async def latencies(session: aiohttp.ClientSession, urls: list[str]) -> list[float]:
    measured = []
    for url in urls:
        seconds, body = await get_page(session, url)
        if not body["jobs"]:
            raise RuntimeError(f"GET {url} listed no job")
        measured.append(seconds)
    return measured


def row(name: str, values: list[float]) -> tuple[str, str]:
    p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
    return name, f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(values)} requests)"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="requests per kind of page")
    parser.add_argument("--deep-pages", type=int, default=200, help="requests for pages deep in the list (0: none)")
    parser.add_argument(
        "--request-timeout-s", type=float, help="the gateway's JETSCRIBE_REQUEST_TIMEOUT_S (a slow list needs more)"
    )
    args = parser.parse_args()
    chance = random.Random(17)

    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            write_s = await write_records(server.url, args.records)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            extra = {"JETSCRIBE_REQUEST_TIMEOUT_S": str(args.request_timeout_s)} if args.request_timeout_s else {}
            env = service_env(Path(tmp) / "data", port, JETSCRIBE_NATS_URL=server.url, **extra)
            started = time.perf_counter()
            async with (
                jetscribe_process("gateway", env, f"{base}/livez") as gateway,
                aiohttp.ClientSession() as session,
            ):
                listed_s = await wait_listed(session, base) + (time.perf_counter() - started)
                rows = [
                    ("job records kept", f"{args.records:,}"),
                    ("records written (straight to KV)", f"{write_s:.1f} s"),
                    ("gateway start → every record listed", f"{listed_s:.1f} s"),
                ]
                for _ in range(3):
                    await get_page(session, f"{base}/jobs?limit={PAGE}")  # warm-up
                rows.append(row("first page", await latencies(session, [f"{base}/jobs?limit={PAGE}"] * args.requests)))
                for status in ("done", "failed", "cancelled", "queued", "running"):
                    url = f"{base}/jobs?limit={PAGE}&status={status}"
                    rows.append(row(f"first page, status={status}", await latencies(session, [url] * args.requests)))
                if args.deep_pages:
                    cursors, listed = await collect_cursors(session, base)
                    rows.append(("jobs listed walking the whole list", f"{listed:,}"))
                    urls = [f"{base}/jobs?limit={PAGE}&cursor={chance.choice(cursors)}" for _ in range(args.deep_pages)]
                    rows.append(row("page deep in the list (random cursor)", await latencies(session, urls)))
                rows.append(("gateway peak RSS", f"{peak_rss_mb(gateway.pid):.0f} MB"))
    table(f"Job list: a page of {PAGE} with {args.records:,} job records kept", rows)


if __name__ == "__main__":
    asyncio.run(main())
