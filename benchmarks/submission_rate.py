"""Submission rate with no worker running: HTTP `POST /jobs` from concurrent clients, and jobs published
straight to NATS.

    .venv/bin/python -m benchmarks.submission_rate [--requests 2000] [--clients 32] [--nats-jobs 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from benchmarks.report import percentile, table
from benchmarks.service import free_port, jetscribe_process, service_env
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.topology import ensure_topology
from schemas import JobMessage, encode, names

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio" / "en1.wav"


async def http_submissions(base_url: str, requests: int, clients: int, body: bytes) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def client(session: aiohttp.ClientSession) -> None:
        for _ in remaining:
            form = aiohttp.FormData()
            form.add_field("language", "en")
            form.add_field("audio", body, filename="clip.wav", content_type="audio/wav")
            start = time.perf_counter()
            async with session.post(f"{base_url}/jobs", data=form) as response:
                await response.read()
                if response.status != 202:
                    raise RuntimeError(f"POST /jobs answered {response.status}: {await response.text()}")
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        return time.perf_counter() - start, latencies


async def nats_submissions(url: str, jobs: int, window: int = 256) -> float:
    settings = Settings(nats_url=url)
    nc = await connect(settings, url, name="bench-publisher")
    try:
        js = nc.jetstream()
        messages = [
            encode(JobMessage(job_id=uuid.uuid4().hex, audio_object="missing", language="en")) for _ in range(jobs)
        ]
        start = time.perf_counter()
        for offset in range(0, jobs, window):
            batch = messages[offset : offset + window]
            await asyncio.gather(
                *(
                    js.publish(names.JOBS_SUBJECT, m, headers={names.MSG_ID_HEADER: f"bench-{offset + i}"})
                    for i, m in enumerate(batch)
                )
            )
        return time.perf_counter() - start
    finally:
        await nc.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--nats-jobs", type=int, default=20000)
    args = parser.parse_args()
    body = FIXTURE.read_bytes()[: 64 * 1024]

    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            nc = await connect(Settings(nats_url=server.url), server.url, name="bench-setup")
            await ensure_topology(nc.jetstream(), Settings(nats_url=server.url))
            await nc.close()
            port = free_port()
            env = service_env(Path(tmp) / "data", port, JETSCRIBE_NATS_URL=server.url)
            async with jetscribe_process("gateway", env, f"http://127.0.0.1:{port}/livez"):
                await http_submissions(f"http://127.0.0.1:{port}", 50, 8, body)  # warm-up
                wall, latencies = await http_submissions(f"http://127.0.0.1:{port}", args.requests, args.clients, body)
            nats_wall = await nats_submissions(server.url, args.nats_jobs)

    table(
        "Submission rate (no workers)",
        [
            ("HTTP clients", str(args.clients)),
            ("HTTP requests (64 KB audio each)", str(args.requests)),
            ("HTTP jobs/s", f"{args.requests / wall:.0f}"),
            ("HTTP latency p50", f"{percentile(latencies, 50) * 1000:.1f} ms"),
            ("HTTP latency p99", f"{percentile(latencies, 99) * 1000:.1f} ms"),
            ("NATS jobs published", str(args.nats_jobs)),
            ("NATS jobs/s", f"{args.nats_jobs / nats_wall:.0f}"),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
