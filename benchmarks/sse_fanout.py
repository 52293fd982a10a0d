"""SSE fan-out: many clients following running jobs on one gateway. A stand-in worker (this process)
publishes progress events on each job's subject; every client must receive every event.

    .venv/bin/python -m benchmarks.sse_fanout [--jobs 100] [--clients-per-job 10] [--events 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import msgspec

from benchmarks.report import percentile, table
from benchmarks.service import cpu_seconds, free_port, jetscribe_process, peak_rss_mb, service_env
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.topology import ensure_topology
from schemas import JobRecord, ProgressEvent, Segment, TerminalEvent, encode, names

SEGMENTS = [Segment(index=0, start=0.0, end=2.5, text="A stand-in transcript.")]
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio" / "en1.wav"


def finisher(transcript: str) -> Callable[[JobRecord], JobRecord]:
    """What a worker writes when a job is done."""

    def finish(record: JobRecord) -> JobRecord:
        return msgspec.structs.replace(
            record, status="done", progress=100, completed_at=datetime.now(UTC), transcript_object=transcript
        )

    return finish


class Tally:
    """Publish and receive times of every (job, percent) progress event."""

    def __init__(self) -> None:
        self.published: dict[tuple[str, int], float] = {}
        self.delays: list[float] = []
        self.received = 0
        self.done = 0


async def follow(
    session: aiohttp.ClientSession, base_url: str, job_id: str, tally: Tally, ready: asyncio.Event
) -> None:
    async with session.get(f"{base_url}/jobs/{job_id}/stream") as response:
        response.raise_for_status()
        event = ""
        async for raw in response.content:
            ready.set()
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "progress":
                percent = json.loads(line[5:])["percent"]
                sent = tally.published.get((job_id, percent))
                if sent is not None:
                    tally.delays.append(time.perf_counter() - sent)
                    tally.received += 1
            elif line.startswith("data:") and event == "done":
                tally.done += 1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--clients-per-job", type=int, default=10)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--interval-s", type=float, default=0.05, help="each job sends one event per interval")
    parser.add_argument("--burst", action="store_true", help="all jobs send their events at the same instant")
    args = parser.parse_args()
    body = FIXTURE.read_bytes()[: 16 * 1024]
    tally = Tally()

    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            settings = Settings(nats_url=server.url)
            nc = await connect(settings, server.url, name="bench-stand-in-worker")
            topology = await ensure_topology(nc.jetstream(), settings)
            store = JobStore(topology.jobs, topology.transcripts)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = service_env(Path(tmp) / "data", port, JETSCRIBE_NATS_URL=server.url)
            async with jetscribe_process("gateway", env, f"{base}/livez") as gateway:
                connector = aiohttp.TCPConnector(limit=0)
                timeout = aiohttp.ClientTimeout(total=None)
                async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                    job_ids = []
                    for _ in range(args.jobs):
                        form = aiohttp.FormData()
                        form.add_field("audio", body, filename="clip.wav")
                        async with session.post(f"{base}/jobs", data=form) as response:
                            job_ids.append((await response.json())["job_id"])
                    readies = [asyncio.Event() for _ in range(args.jobs * args.clients_per_job)]
                    clients = [
                        asyncio.create_task(follow(session, base, job_ids[i % args.jobs], tally, readies[i]))
                        for i in range(len(readies))
                    ]
                    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
                    cpu_before = cpu_seconds(gateway.pid)
                    start = time.perf_counter()
                    # Jobs progress independently: each round's events are spread over the round, unless
                    # --burst sends every job's event at the same instant (the worst case for fan-out).
                    gap_s = 0.0 if args.burst else args.interval_s / args.jobs
                    for seq in range(1, args.events + 1):
                        for job_id in job_ids:
                            tally.published[(job_id, seq)] = time.perf_counter()
                            event = ProgressEvent(job_id=job_id, seq=1000 + seq, percent=seq, stage="transcribing")
                            await nc.publish(names.progress_subject(job_id), encode(event))
                            if gap_s:
                                await asyncio.sleep(gap_s)
                        if args.burst:
                            await asyncio.sleep(args.interval_s)
                    publish_s = time.perf_counter() - start
                    for job_id in job_ids:
                        transcript = await store.put_transcript(job_id, SEGMENTS)
                        done = await store.transition(job_id, finisher(transcript))
                        terminal = TerminalEvent(
                            type="completed",
                            job=done.record.to_job(),
                            transcript_object=transcript,
                            occurred_at=datetime.now(UTC),
                        )
                        await nc.publish(names.event_subject("completed", job_id), encode(terminal))
                    await asyncio.wait_for(asyncio.gather(*clients), 60)
                    wall = time.perf_counter() - start
                    cpu = cpu_seconds(gateway.pid) - cpu_before
                    rss = peak_rss_mb(gateway.pid)
            await nc.close()

    expected = args.jobs * args.clients_per_job * args.events
    table(
        "SSE fan-out",
        [
            ("jobs × clients per job", f"{args.jobs} × {args.clients_per_job}"),
            ("progress events per job", f"{args.events} ({'all jobs at once' if args.burst else 'spread'})"),
            ("deliveries per second (measured)", f"{expected / publish_s:.0f}"),
            ("events delivered / expected", f"{tally.received} / {expected}"),
            ("done events / clients", f"{tally.done} / {len(readies)}"),
            ("delay p50", f"{percentile(tally.delays, 50) * 1000:.1f} ms"),
            ("delay p99", f"{percentile(tally.delays, 99) * 1000:.1f} ms"),
            ("gateway CPU during the run", f"{cpu:.2f} s over {wall:.1f} s wall"),
            ("gateway peak RSS", f"{rss:.0f} MB"),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
