"""Webhook isolation: how long a normal receiver waits for its webhook while 100 deliveries to a receiver that
never answers are queued ahead of it, with per-host bounds (now) and without them (as before issue 18).

A `jetscribe gateway` process delivers; this process stands in for the worker (it writes finished job records and
publishes their terminal events, as a worker does) and runs both receivers: the tarpit on 127.0.0.2 reads each
request and never answers, the normal one on 127.0.0.1 answers 200 at once. Latency is from publishing a job's
terminal event to its webhook request arriving. "Before" runs the same gateway with
`JETSCRIBE_WEBHOOK_HOST_CONCURRENCY` = `JETSCRIBE_WEBHOOK_CONCURRENCY` = 16, the delivery it had before (16 attempts,
no bound per host).

    .venv/bin/python -m benchmarks.webhook_isolation [--tarpit-jobs 100] [--normal-jobs 5] [--timeout-s 10]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from nats.js import JetStreamContext

from benchmarks.report import median, table
from benchmarks.service import free_port, jetscribe_process, service_env
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.topology import ensure_topology
from schemas import JobRecord, TerminalEvent, WebhookState, encode, names

GIVE_UP_S = 1200.0


@dataclass
class Receivers:
    normal_url: str = ""
    tarpit_url: str = ""
    arrived: dict[str, float] = field(default_factory=dict)
    tarpit_requests: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def normal(self, request: web.Request) -> web.Response:
        self.arrived.setdefault(request.headers["webhook-id"].split(":")[0], time.perf_counter())
        self.changed.set()
        return web.Response(status=200)

    async def tarpit(self, request: web.Request) -> web.Response:
        await request.read()
        self.tarpit_requests += 1
        await asyncio.Event().wait()  # cancelled when the gateway gives up (handler_cancellation)
        raise AssertionError("unreachable")


@asynccontextmanager
async def receivers() -> AsyncIterator[Receivers]:
    found = Receivers()
    runners = []
    for host, handler in (("127.0.0.1", found.normal), ("127.0.0.2", found.tarpit)):
        app = web.Application()
        app.router.add_post("/hook", handler)
        runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, host, 0).start()
        runners.append(runner)
        url = f"http://{host}:{runner.addresses[0][1]}/hook"
        if host == "127.0.0.1":
            found.normal_url = url
        else:
            found.tarpit_url = url
    try:
        yield found
    finally:
        for runner in runners:
            await runner.cleanup()


async def finish_job(store: JobStore, js: JetStreamContext, webhook_url: str) -> tuple[str, float]:
    """A finished job's record and terminal event, as a worker writes them; returns its id and publish time."""
    job_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    record = JobRecord(
        id=job_id,
        status="failed",
        task="transcribe",
        language="en",
        webhook_url=webhook_url,
        webhook=WebhookState(url=webhook_url),
        error="stand-in job",
        created_at=now,
        completed_at=now,
    )
    await store.create(record)
    event = TerminalEvent(type="failed", job=record.to_job(), occurred_at=now)
    published = time.perf_counter()
    await js.publish(
        names.event_subject("failed", job_id), encode(event), headers={names.MSG_ID_HEADER: f"{job_id}:failed"}
    )
    return job_id, published


async def latencies(
    tarpit_jobs: int, normal_jobs: int, timeout_s: float, concurrency: int, per_host: int
) -> list[float]:
    """Seconds from event to webhook for `normal_jobs` jobs published after `tarpit_jobs` tarpitted ones."""
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server, receivers() as found:
            settings = Settings(nats_url=server.url)
            nc = await connect(settings, server.url, name="benchmark")
            try:
                js = nc.jetstream()
                topology = await ensure_topology(js, settings)
                store = JobStore(topology.jobs, topology.transcripts)
                port = free_port()
                env = service_env(
                    Path(tmp) / "data",
                    port,
                    JETSCRIBE_NATS_URL=server.url,
                    JETSCRIBE_ALLOW_PRIVATE_TARGETS="true",
                    LOG_LEVEL="critical",  # every given-up tarpit delivery is logged at error level
                    JETSCRIBE_WEBHOOK_TIMEOUT_S=str(timeout_s),
                    JETSCRIBE_WEBHOOK_CONCURRENCY=str(concurrency),
                    JETSCRIBE_WEBHOOK_HOST_CONCURRENCY=str(per_host),
                )
                async with jetscribe_process("gateway", env, f"http://127.0.0.1:{port}/livez"):
                    for _ in range(tarpit_jobs):
                        await finish_job(store, js, found.tarpit_url)
                    sent = dict([await finish_job(store, js, found.normal_url) for _ in range(normal_jobs)])
                    async with asyncio.timeout(GIVE_UP_S):
                        while not sent.keys() <= found.arrived.keys():
                            found.changed.clear()
                            await found.changed.wait()
                return [found.arrived[job_id] - published for job_id, published in sent.items()]
            finally:
                await nc.close()


def seconds(values: list[float]) -> str:
    return f"median {median(values):.3f} s, max {max(values):.3f} s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tarpit-jobs", type=int, default=100)
    parser.add_argument("--normal-jobs", type=int, default=5)
    parser.add_argument("--timeout-s", type=float, default=10.0, help="JETSCRIBE_WEBHOOK_TIMEOUT_S")
    args = parser.parse_args()
    defaults = Settings()
    after = (defaults.webhook_concurrency, defaults.webhook_host_concurrency)
    before = (16, 16)
    rows: list[tuple[str, str]] = []
    for label, (concurrency, per_host) in (("after", after), ("before", before)):
        alone = await latencies(0, args.normal_jobs, args.timeout_s, concurrency, per_host)
        loaded = await latencies(args.tarpit_jobs, args.normal_jobs, args.timeout_s, concurrency, per_host)
        rows += [
            (f"{label} ({concurrency} attempts, {per_host} per host): nothing queued", seconds(alone)),
            (f"{label}: {args.tarpit_jobs} tarpitted deliveries queued ahead", seconds(loaded)),
            (f"{label}: ratio loaded / alone (medians)", f"{median(loaded) / median(alone):.1f}"),
        ]
    table(
        f"Webhook isolation: {args.normal_jobs} normal webhooks, {args.timeout_s:g} s attempt time-out, "
        f"retry schedule {','.join(f'{s:g}' for s in defaults.webhook_retry_schedule_s)} s",
        rows,
    )


if __name__ == "__main__":
    asyncio.run(main())
