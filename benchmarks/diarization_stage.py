"""GPU-slot time saved by diarizing in a stage of its own: the whisper worker's busy time for the same job with and
without `diarize` (the slot is freed at the hand-off), against the time diarizing inline would add to it.

    .venv/bin/python -m benchmarks.diarization_stage [--minutes 1] [--runs 3] [--model tiny.en]

One process runs a real nats-server (`EmbeddedNats`), a whisper worker (`worker.Worker`, one slot) and a diarization
worker (`diarization.DiarizationWorker`), and submits one synthetic three-voice conversation (espeak-ng,
tests/diarizer/conversations.py) as a job, alternately without and with `diarize`, waiting for each to end before
the next (so the two workers never compete for the cores). The job record is polled every 20 ms:

- whisper slot busy: from the record turning `running` to it turning `done` (without `diarize`) or `diarizing`
  (with it: the hand-off, after which the whisper worker takes its next job);
- diarization stage: from `diarizing` to `done` (the diarization worker fetches and decodes the audio again, then
  diarizes);
- inline cost: `Diarizer.diarize` on the same decoded audio and transcript, timed in this process — what a whisper
  worker that diarized before acking would add to its slot time.

Medians of `--runs`. The saving per job is the inline cost; its share of the slot grows as Whisper gets faster (a
GPU transcribes many times faster than these two CPU cores, while diarization costs the same CPU time either way).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import wave
from pathlib import Path
from typing import Final

import numpy as np
from nats.js import JetStreamContext

from benchmarks.report import median, table
from benchmarks.service import model_path
from diarization import DiarizationWorker
from diarizer import Diarizer
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.stage.decode import decode_file
from jetscribe.topology import Topology, ensure_topology
from tests.diarizer.conversations import SAMPLE_RATE, converse, round_robin
from tests.worker.jobs import submit
from worker.service import Worker

POLL_S: Final = 0.02
TURN_S: Final = 4.6
"""Average turn plus pause of round_robin's conversations, to size them."""


def conversation_wav(minutes: float, path: Path) -> Path:
    conversation = converse(round_robin(3, max(3, round(minutes * 60 / TURN_S))))
    pcm = (np.clip(conversation.samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return path


async def timeline(store: JobStore, job_id: str) -> dict[str, float]:
    """`time.perf_counter()` at which the job's record was first seen in each status, until it is terminal."""
    seen: dict[str, float] = {}
    while True:
        found = await store.get(job_id)
        if found is not None:
            seen.setdefault(found.record.status, time.perf_counter())
            if found.record.is_terminal:
                if found.record.status != "done":
                    raise RuntimeError(f"job {job_id} ended {found.record.status}: {found.record.error}")
                return seen
        await asyncio.sleep(POLL_S)


async def one_job(
    js: JetStreamContext, topology: Topology, wav: Path, *, diarize: bool
) -> tuple[str, dict[str, float]]:
    """Submit `wav` and follow it to its end; its id and status timeline (with `submitted`: before the upload)."""
    submitted = time.perf_counter()
    job_id = await submit(js, topology, wav, language="en", options={"diarize": diarize})
    seen = await timeline(JobStore(topology.jobs, topology.transcripts), job_id)
    return job_id, {"submitted": submitted, **seen}


async def measure(args: argparse.Namespace, tmp: Path) -> list[tuple[str, str]]:
    wav = conversation_wav(args.minutes, tmp / "conversation.wav")
    server = EmbeddedNats(tmp / "nats")
    await asyncio.to_thread(server.start)
    try:
        settings = Settings(
            data_dir=tmp / "data",
            nats_url=server.url,
            whisper_model=args.model,
            whisper_model_path=model_path(args.model),
            use_gpu=False,
            worker_heartbeat_ttl_s=5.0,
        )
        nc = await connect(settings, server.url, name="benchmark")
        diarizer = await asyncio.to_thread(Diarizer.load)
        try:
            js = nc.jetstream()
            topology = await ensure_topology(js, settings)
            store = JobStore(topology.jobs, topology.transcripts)
            plain_busy, staged_busy, stage_s, total_s, inline_s = [], [], [], [], []
            samples = await decode_file(wav, max_audio_s=settings.max_audio_s)
            async with Worker(settings, nc), DiarizationWorker(settings, nc, diarizer=diarizer):
                # Warm-up (model pages, ffmpeg, encoder); its transcript is what inline diarization would label.
                warm_id, _ = await one_job(js, topology, wav, diarize=False)
                record = (await store.require(warm_id)).record
                assert record.transcript_object is not None
                transcript = await store.get_transcript(record.transcript_object)
                # The three measures take turns, so drift in the machine's load hits them alike.
                for _ in range(args.runs):
                    _, plain = await one_job(js, topology, wav, diarize=False)
                    plain_busy.append(plain["done"] - plain["running"])
                    _, staged = await one_job(js, topology, wav, diarize=True)
                    staged_busy.append(staged["diarizing"] - staged["running"])
                    stage_s.append(staged["done"] - staged["diarizing"])
                    total_s.append(staged["done"] - staged["submitted"])
                    # Inline: what a whisper worker would do with its decoded audio and transcript before acking.
                    start = time.perf_counter()
                    await asyncio.to_thread(diarizer.diarize, samples, transcript)
                    inline_s.append(time.perf_counter() - start)
        finally:
            await nc.drain()
    finally:
        await asyncio.to_thread(server.stop)
    audio_min = len(samples) / SAMPLE_RATE / 60
    busy, busy_staged, inline = median(plain_busy), median(staged_busy), median(inline_s)
    return [
        ("audio", f"{audio_min:.2f} min, 3 espeak-ng voices; Whisper {args.model} on the CPU"),
        ("whisper slot busy, job without diarize", f"{busy:.2f} s"),
        ("whisper slot busy, job with diarize (freed at the hand-off)", f"{busy_staged:.2f} s"),
        (
            "diarizing inline would add to the slot (Diarizer.diarize)",
            f"{inline:.2f} s ({inline / audio_min:.2f} s per audio minute)",
        ),
        ("slot time per job, inline diarization / stage", f"{(busy + inline) / busy_staged:.2f}x"),
        ("diarization stage (hand-off to done: fetch, decode again, diarize)", f"{median(stage_s):.2f} s"),
        ("job with diarize, submitted to done", f"{median(total_s):.2f} s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="tiny.en")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(measure(args, Path(tmp)))
    table(f"Diarization as a stage: whisper slot time (median of {args.runs})", rows)


if __name__ == "__main__":
    main()
