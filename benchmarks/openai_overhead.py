"""OpenAI-compatible route against the native API: the same clips through `POST /v1/audio/transcriptions` (the
official `openai` SDK, which waits for the answer) and through `POST /jobs` + waiting for `done` (the Python
client), alternately, on one `jetscribe serve`. Both jobs ask for the same decoding (language `en`, no word
timestamps: the OpenAI route asks for words only with `timestamp_granularities[]=word`), so the difference is
what the synchronous route adds. Each job's whisper time (`timings.transcribe_s`, read with `GET /jobs/{id}`)
is reported too: whisper's own run-to-run spread is larger than the routes' difference on busy cores.

    .venv/bin/python -m benchmarks.openai_overhead [--long-s 300] [--short-s 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from openai import AsyncOpenAI

from benchmarks.audio import speech
from benchmarks.report import median, table
from benchmarks.service import free_port, jetscribe_process, service_env
from client import JetscribeClient
from schemas import DecodeOptions

THREADS = os.cpu_count() or 1
SAME_DECODING = DecodeOptions(word_timestamps=False)


async def native(base_url: str, clip: Path) -> tuple[float, float]:
    """(wall s, whisper s) of one job through `POST /jobs` and waiting for its end."""
    async with JetscribeClient(base_url) as client:
        start = time.perf_counter()
        job_id = await client.submit(clip, language="en", options=SAME_DECODING)
        job = await client.wait(job_id)
        elapsed = time.perf_counter() - start
    if job.status != "done" or job.timings is None:
        raise RuntimeError(f"job {job_id} ended {job.status}: {job.error}")
    return elapsed, job.timings.transcribe_s


async def openai_route(base_url: str, clip: Path) -> tuple[float, float]:
    """(wall s, whisper s) of one `audio.transcriptions.create` call with the official SDK."""
    sdk = AsyncOpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=1800)
    start = time.perf_counter()
    raw = await sdk.audio.transcriptions.with_raw_response.create(
        file=clip, model="whisper-1", language="en", response_format="json"
    )
    elapsed = time.perf_counter() - start
    job_id = raw.headers["x-job-id"]
    await sdk.close()
    async with JetscribeClient(base_url) as client:
        job = await client.get(job_id)
    if job.status != "done" or job.timings is None:
        raise RuntimeError(f"job {job_id} ended {job.status}: {job.error}")
    return elapsed, job.timings.transcribe_s


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long-s", type=float, default=300.0)
    parser.add_argument("--short-s", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = [("threads", str(THREADS))]
    with tempfile.TemporaryDirectory() as tmp:
        clips = {
            f"{args.short_s:.0f} s clip": speech(args.short_s, Path(tmp) / "short.flac"),
            f"{args.long_s:.0f} s clip": speech(args.long_s, Path(tmp) / "long.flac"),
        }
        port = free_port()
        env = service_env(Path(tmp) / "data", port, JETSCRIBE_THREADS=str(THREADS))
        base = f"http://127.0.0.1:{port}"
        async with jetscribe_process("serve", env, f"{base}/health"):
            await native(base, clips[next(iter(clips))])  # warm both paths' connections and the model once
            for label, clip in clips.items():
                runs: dict[str, list[tuple[float, float]]] = {"POST /jobs + wait": [], "/v1/audio/transcriptions": []}
                # Alternate, and swap which goes first each round, so drift in machine load hits both alike.
                for round_ in range(args.repeats):
                    order = [native, openai_route] if round_ % 2 == 0 else [openai_route, native]
                    for path in order:
                        key = "POST /jobs + wait" if path is native else "/v1/audio/transcriptions"
                        runs[key].append(await path(base, clip))
                walls = {key: median([wall for wall, _ in values]) for key, values in runs.items()}
                outside = {key: median([wall - whisper for wall, whisper in values]) for key, values in runs.items()}
                for key in runs:
                    rows.append((f"{label}: {key}, wall", f"{walls[key]:.2f} s"))
                    rows.append((f"{label}: {key}, outside whisper", f"{outside[key] * 1000:.0f} ms"))
                sync, async_ = walls["/v1/audio/transcriptions"], walls["POST /jobs + wait"]
                rows.append((f"{label}: OpenAI route / native, wall", f"{sync / async_:.3f}"))
                rows.append(
                    (
                        f"{label}: OpenAI route − native, outside whisper",
                        f"{(outside['/v1/audio/transcriptions'] - outside['POST /jobs + wait']) * 1000:+.0f} ms",
                    )
                )
    table(f"OpenAI-compatible route vs POST /jobs (tiny.en, median of {args.repeats})", rows)


if __name__ == "__main__":
    asyncio.run(main())
