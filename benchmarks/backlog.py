"""Backlog throughput: 40 queued jobs of 5–15 s speech drained by one worker, against the same files
transcribed in a plain sequential loop on the service's own engine (`benchmarks.plain`). Engine busy = the whisper
seconds the worker recorded for the jobs (their `timings.transcribe_s`) divided by the wall time from the first
submission to the last `done`.

    .venv/bin/python -m benchmarks.backlog [--jobs 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

from benchmarks.audio import speech
from benchmarks.plain import PlainTranscriber
from benchmarks.report import table
from benchmarks.service import free_port, jetscribe_process, service_env
from client import JetscribeClient
from jetscribe.config import Settings
from schemas import Job

THREADS = os.cpu_count() or 1


async def drain(base_url: str, clips: list[Path]) -> tuple[float, list[Job]]:
    async with JetscribeClient(base_url) as client:
        start = time.perf_counter()
        job_ids = [await client.submit(clip, language="en") for clip in clips]
        jobs = await asyncio.gather(*(client.wait(job_id) for job_id in job_ids))
        elapsed = time.perf_counter() - start
    failed = [j for j in jobs if j.status != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not finish: {failed[0].error}")
    return elapsed, jobs


def plain_loop(settings: Settings, clips: list[Path]) -> tuple[float, float]:
    """(wall seconds, of which pure Whisper seconds) for the sequential loop, on the engine `settings` build."""
    with PlainTranscriber(settings) as plain:
        engine_s = 0.0
        start = time.perf_counter()
        for clip in clips:
            engine_s += plain.run(clip).engine_s
        return time.perf_counter() - start, engine_s


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument(
        "--prefetch-lead-s", default="5", help="JETSCRIBE_PREFETCH_LEAD_S of the worker (0: no overlap to speak of)"
    )
    args = parser.parse_args()
    rng = random.Random(7)

    with tempfile.TemporaryDirectory() as tmp:
        clips = [speech(rng.uniform(5, 15), Path(tmp) / f"clip{i}.ogg", offset=i) for i in range(args.jobs)]
        port = free_port()
        env = service_env(
            Path(tmp) / "data", port, JETSCRIBE_THREADS=str(THREADS), JETSCRIBE_PREFETCH_LEAD_S=args.prefetch_lead_s
        )
        # The plain loop builds its engine from the very settings the service reads.
        loop_wall, engine_s = await asyncio.to_thread(plain_loop, Settings.from_env(env), clips)
        base = f"http://127.0.0.1:{port}"
        async with jetscribe_process("serve", env, f"{base}/health"):
            service_wall, jobs = await drain(base, clips)
    whisper_s = sum(j.timings.transcribe_s for j in jobs if j.timings is not None)
    waited_s = sum(j.timings.wait_s for j in jobs if j.timings is not None)

    table(
        f"Backlog throughput ({args.jobs} jobs of 5–15 s, tiny.en, one worker, prefetch lead {args.prefetch_lead_s} s)",
        [
            ("plain sequential loop", f"{loop_wall:.1f} s ({args.jobs / loop_wall * 60:.1f} jobs/min)"),
            ("of which Whisper", f"{engine_s:.1f} s"),
            ("service: submit all → last done", f"{service_wall:.1f} s ({args.jobs / service_wall * 60:.1f} jobs/min)"),
            ("throughput vs loop", f"{loop_wall / service_wall:.3f}"),
            ("service: whisper time recorded by the worker", f"{whisper_s:.1f} s"),
            ("engine busy (whisper time / wall)", f"{whisper_s / service_wall * 100:.1f} %"),
            ("audio ready before the engine was (jobs' wait_s, summed)", f"{waited_s:.1f} s"),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
