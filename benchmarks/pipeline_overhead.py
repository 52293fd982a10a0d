"""Pipeline overhead: `POST /jobs` → `done` through `jetscribe serve`, against ffmpeg decode + Whisper of the
same file in one plain process (the same engine, built from the same settings; `benchmarks.plain`). Ratios within
one run.

    .venv/bin/python -m benchmarks.pipeline_overhead [--long-s 300] [--short-s 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from benchmarks.audio import speech
from benchmarks.plain import PlainTranscriber
from benchmarks.report import median, table
from benchmarks.service import free_port, jetscribe_process, service_env
from client import JetscribeClient
from jetscribe.config import Settings
from schemas import Job

THREADS = os.cpu_count() or 1


async def through_service(base_url: str, path: Path) -> tuple[float, Job]:
    async with JetscribeClient(base_url) as client:
        start = time.perf_counter()
        job_id = await client.submit(path, language="en")
        job = await client.wait(job_id)
        elapsed = time.perf_counter() - start
    if job.status != "done" or job.timings is None:
        raise RuntimeError(f"job {job_id} ended {job.status}: {job.error}")
    return elapsed, job


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long-s", type=float, default=300.0)
    parser.add_argument("--short-s", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        clips = {
            "short": speech(args.short_s, Path(tmp) / "short.flac"),
            "long": speech(args.long_s, Path(tmp) / "long.flac"),
        }
        port = free_port()
        env = service_env(Path(tmp) / "data", port, JETSCRIBE_THREADS=str(THREADS))
        base = f"http://127.0.0.1:{port}"
        rows: list[tuple[str, str]] = [("threads", str(THREADS))]
        # The plain side builds its engine from the very settings the service reads.
        plain = await asyncio.to_thread(PlainTranscriber, Settings.from_env(env))
        with plain:
            async with jetscribe_process("serve", env, f"{base}/health"):
                for label, clip in clips.items():
                    service_s, plain_s, jobs = [], [], []
                    # Alternate the two so drift in machine load hits both alike.
                    for _ in range(args.repeats):
                        elapsed, job = await through_service(base, clip)
                        service_s.append(elapsed)
                        jobs.append(job)
                        plain_s.append((await asyncio.to_thread(plain.run, clip)).wall_s)
                    stages = [j.timings for j in jobs if j.timings is not None]
                    outside = [1 - t.transcribe_s / e for t, e in zip(stages, service_s, strict=True)]
                    ratio = median(service_s) / median(plain_s)
                    rows += [
                        (
                            f"{label} clip ({args.short_s if label == 'short' else args.long_s:.0f} s): plain",
                            f"{median(plain_s):.2f} s",
                        ),
                        (f"{label} clip: POST → done via serve", f"{median(service_s):.2f} s"),
                        (f"{label} clip: ratio", f"{ratio:.3f}"),
                        (
                            f"{label} clip: worker fetch / decode / whisper",
                            f"{median([t.fetch_s for t in stages]):.2f} / {median([t.decode_s for t in stages]):.2f} / "
                            f"{median([t.transcribe_s for t in stages]):.2f} s",
                        ),
                        (
                            f"{label} clip: time outside whisper (same jobs)",
                            f"{median(outside) * 100:.1f} %",
                        ),
                    ]
    table(f"Pipeline overhead (tiny.en, median of {args.repeats})", rows)


if __name__ == "__main__":
    asyncio.run(main())
