"""Big uploads: a 1 GiB `POST /jobs` through `jetscribe gateway` (gateway peak RSS and MB/s), then the worker's
read of that object from the object store with jetscribe.objects.read_object, against nats-py's own `get`.

    .venv/bin/python -m benchmarks.big_upload [--mib 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from benchmarks.report import table
from benchmarks.service import free_port, jetscribe_process, peak_rss_mb, service_env
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.objects import read_object
from jetscribe.topology import ensure_topology
from schemas import names

CHUNK = 1 << 20


async def body(total: int) -> AsyncIterator[bytes]:
    block = os.urandom(CHUNK)
    for _ in range(total // CHUNK):
        yield block


async def upload(base_url: str, total: int) -> tuple[float, str]:
    with aiohttp.MultipartWriter("form-data") as form:
        part = form.append_payload(aiohttp.payload.AsyncIterablePayload(body(total)))
        part.set_content_disposition("form-data", name="audio", filename="big.wav")
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        start = time.perf_counter()
        async with session.post(f"{base_url}/jobs", data=form) as response:
            answer = await response.json()
            if response.status != 202:
                raise RuntimeError(f"upload answered {response.status}: {answer}")
        return time.perf_counter() - start, answer["job_id"]


def peak_self_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    total = args.mib * CHUNK
    rows: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            settings = Settings(nats_url=server.url)
            nc = await connect(settings, server.url, name="bench-reader")
            await ensure_topology(nc.jetstream(), settings)
            port = free_port()
            env = service_env(Path(tmp) / "data", port, JETSCRIBE_NATS_URL=server.url)
            async with jetscribe_process("gateway", env, f"http://127.0.0.1:{port}/livez") as gateway:
                idle_rss = peak_rss_mb(gateway.pid)
                wall, job_id = await upload(f"http://127.0.0.1:{port}", total)
                rows += [
                    (f"upload of {args.mib} MiB through POST /jobs", f"{wall:.1f} s, {total / wall / 1e6:.0f} MB/s"),
                    ("gateway peak RSS (idle → after upload)", f"{idle_rss:.0f} → {peak_rss_mb(gateway.pid):.0f} MB"),
                ]

            before = peak_self_mb()
            with (Path(tmp) / "fetched").open("wb") as dest:
                start = time.perf_counter()
                await read_object(nc.jetstream(), names.AUDIO_BUCKET, job_id, dest)
                fast = time.perf_counter() - start
            rows += [
                ("worker fetch, jetscribe.objects.read_object", f"{fast:.1f} s, {total / fast / 1e6:.0f} MB/s"),
                ("reader peak RSS (before → after)", f"{before:.0f} → {peak_self_mb():.0f} MB"),
            ]
            store = await nc.jetstream().object_store(names.AUDIO_BUCKET)
            with (Path(tmp) / "fetched-nats-py").open("wb") as dest:
                start = time.perf_counter()
                await store.get(job_id, writeinto=dest)
                slow = time.perf_counter() - start
            rows.append(("same object, nats-py ObjectStore.get", f"{slow:.1f} s, {total / slow / 1e6:.0f} MB/s"))
            await nc.close()

    table(f"Big uploads ({args.mib} MiB, loopback)", rows)


if __name__ == "__main__":
    asyncio.run(main())
