"""Backlog throughput: 40 queued jobs of 5–15 s speech drained by one worker, against the same files
transcribed in a plain sequential loop. Engine busy = the loop's pure Whisper time for the same files
divided by the service's wall time (the compute is identical, so the rest is pipeline).

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
from benchmarks.service import free_port, jetscribe_process, model_path, service_env
from jetscribe.client import JetscribeClient

THREADS = os.cpu_count() or 1


async def drain(base_url: str, clips: list[Path]) -> float:
    async with JetscribeClient(base_url) as client:
        start = time.perf_counter()
        job_ids = [await client.submit(clip, language="en") for clip in clips]
        jobs = await asyncio.gather(*(client.wait(job_id) for job_id in job_ids))
        elapsed = time.perf_counter() - start
    failed = [j for j in jobs if j.status != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not finish: {failed[0].error}")
    return elapsed


def plain_loop(plain: PlainTranscriber, clips: list[Path]) -> tuple[float, float]:
    """(wall seconds, of which pure Whisper seconds) for the sequential loop."""
    engine_s = 0.0
    start = time.perf_counter()
    for clip in clips:
        engine_s += plain.transcribe(plain.decode(clip))
    return time.perf_counter() - start, engine_s


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(7)

    with tempfile.TemporaryDirectory() as tmp:
        clips = [speech(rng.uniform(5, 15), Path(tmp) / f"clip{i}.ogg", offset=i) for i in range(args.jobs)]
        plain = PlainTranscriber(model_path(), threads=THREADS)
        loop_wall, engine_s = await asyncio.to_thread(plain_loop, plain, clips)
        del plain
        port = free_port()
        env = service_env(Path(tmp) / "data", port, JETSCRIBE_THREADS=str(THREADS))
        base = f"http://127.0.0.1:{port}"
        async with jetscribe_process("serve", env, f"{base}/health"):
            service_wall = await drain(base, clips)

    table(
        f"Backlog throughput ({args.jobs} jobs of 5–15 s, tiny.en, one worker)",
        [
            ("plain sequential loop", f"{loop_wall:.1f} s ({args.jobs / loop_wall * 60:.1f} jobs/min)"),
            ("of which Whisper", f"{engine_s:.1f} s"),
            ("service: submit all → last done", f"{service_wall:.1f} s ({args.jobs / service_wall * 60:.1f} jobs/min)"),
            ("throughput vs loop", f"{loop_wall / service_wall:.3f}"),
            ("engine busy", f"{engine_s / service_wall * 100:.1f} %"),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
