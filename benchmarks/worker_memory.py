"""Worker memory per slot against the formula in docs/deploy.md (sizing), for 10 min, 1 h and 4 h of speech.

Each size gets a fresh `jetscribe worker` process (so its peak RSS, VmHWM, is that job's) on an embedded
nats-server. The job is published straight to NATS; the script samples the worker's RSS until whisper
has worked on the job for `--transcribe-s` seconds (all memory is allocated by then: the decoded
samples, and whisper's buffers for one chunk), then cancels it and reports the time from the cancel
to the slot taking the next job (a 2 s clip) and producing its first segment.

    .venv/bin/python -m benchmarks.worker_memory [--sizes 600,3600,14400] [--transcribe-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg

from benchmarks.report import table
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.ffmpeg import ffmpeg_binary
from jetscribe.models.store import resolve_model
from jetscribe.topology import Topology, ensure_topology
from schemas import CancelRequest, DecodeOptions, JobMessage, encode, names
from schemas.codec import decode_live_event
from schemas.events import ProgressEvent, SegmentEvent

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio"
BYTES_PER_AUDIO_S = 64_000
MODELS = Path.home() / ".cache" / "jetscribe-tests" / "models"


def speech_loop(seconds: int, dest: Path) -> Path:
    """`seconds` of the 62 s speech fixture looped (stream copy: a 4 h file takes a second to make)."""
    subprocess.run(
        [ffmpeg_binary(), "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(FIXTURES / "long60.ogg"),
         "-t", str(seconds), "-c", "copy", str(dest)],
        check=True,
    )  # fmt: skip
    return dest


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of `pid` in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class LiveEvents:
    """Progress and segment events of every job, as they arrive."""

    def __init__(self) -> None:
        self.transcribing_since: dict[str, float] = {}
        self.first_segment: dict[str, float] = {}

    async def on_message(self, msg: Msg) -> None:
        event = decode_live_event(msg.data)
        now = time.monotonic()
        if isinstance(event, ProgressEvent) and event.stage == "transcribing" and event.percent > 10:
            self.transcribing_since.setdefault(event.job_id, now)
        if isinstance(event, SegmentEvent):
            self.first_segment.setdefault(event.job_id, now)


async def publish(nc: Client, topology: Topology, audio: Path, job_id: str) -> None:
    with audio.open("rb") as f:
        await topology.audio.put(job_id, f)
    message = JobMessage(
        job_id=job_id, audio_object=job_id, language="en", options=DecodeOptions(beam_size=1),
        submitted_at=datetime.now(UTC),
    )  # fmt: skip
    await nc.jetstream().publish(names.JOBS_SUBJECT, encode(message), headers={names.MSG_ID_HEADER: job_id})


async def measure(
    nc: Client, topology: Topology, server: EmbeddedNats, audio: Path, size_s: int, transcribe_s: float, work: Path
) -> list[tuple[str, str]]:
    model = resolve_model("tiny.en", MODELS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JETSCRIBE_")}
    env.update(
        JETSCRIBE_NATS_URL=server.url, WHISPER_MODEL="tiny.en", WHISPER_MODEL_PATH=str(model), DATA_DIR=str(work),
        JETSCRIBE_USE_GPU="false", JETSCRIBE_THREADS="2", JETSCRIBE_MAX_AUDIO_S=str(max(size_s + 60, 14400)),
        JETSCRIBE_WORK_DIR=str(work / "tmp"), LOG_LEVEL="warning",
    )  # fmt: skip
    worker = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "worker", env=env)
    try:
        await _registered(topology, worker.pid)
        idle_rss, _ = rss_kb(worker.pid)
        events = LiveEvents()
        sub = await nc.subscribe(names.PROGRESS_WILDCARD, cb=events.on_message)
        job_id, next_id = f"mem-{size_s}", f"next-{size_s}"
        await publish(nc, topology, audio, job_id)
        peak = idle_rss
        while job_id not in events.transcribing_since or (
            time.monotonic() - events.transcribing_since[job_id] < transcribe_s
        ):
            peak = max(peak, rss_kb(worker.pid)[0])
            await asyncio.sleep(0.1)
        await publish(nc, topology, FIXTURES / "en1.wav", next_id)
        cancelled_at = time.monotonic()
        cancel = CancelRequest(job_id=job_id, requested_at=datetime.now(UTC))
        await nc.publish(names.cancel_subject(job_id), encode(cancel))
        while next_id not in events.first_segment:
            peak = max(peak, rss_kb(worker.pid)[0])
            await asyncio.sleep(0.05)
        freed_s = events.first_segment[next_id] - cancelled_at
        hwm = rss_kb(worker.pid)[1]
        await sub.unsubscribe()
    finally:
        worker.terminate()
        await worker.wait()
    predicted_mb = (idle_rss * 1024 + BYTES_PER_AUDIO_S * size_s) / 1e6
    label = f"{size_s / 3600:.2f} h" if size_s >= 3600 else f"{size_s // 60} min"
    return [
        (f"{label}: idle worker RSS (model loaded, warmed)", f"{idle_rss / 1024:.0f} MiB"),
        (f"{label}: peak RSS (VmHWM)", f"{hwm / 1024:.0f} MiB ({hwm * 1024 / 1e6:.0f} MB)"),
        (f"{label}: formula idle + 64 KB × audio s", f"{predicted_mb:.0f} MB"),
        (f"{label}: cancel → next job's first segment", f"{freed_s:.2f} s"),
    ]


async def _registered(topology: Topology, pid: int) -> None:
    """Return once the worker process `pid` heartbeats (model loaded and warmed up)."""
    from nats.js.errors import NoKeysError

    for _ in range(1200):
        try:
            if any(f"-{pid}-" in key for key in await topology.workers.keys()):
                return
        except NoKeysError:
            pass
        await asyncio.sleep(0.25)
    raise TimeoutError(f"worker {pid} never heartbeated")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="600,3600,14400", help="audio lengths in seconds, comma-separated")
    parser.add_argument("--transcribe-s", type=float, default=20.0, help="seconds of transcription before the cancel")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with EmbeddedNats(work / "nats") as server:
            settings = Settings(nats_url=server.url)
            nc = await connect(settings, server.url, name="bench")
            try:
                topology = await ensure_topology(nc.jetstream(), settings)
                for size_s in (int(s) for s in args.sizes.split(",")):
                    audio = speech_loop(size_s, work / f"speech{size_s}.ogg")
                    rows += await measure(nc, topology, server, audio, size_s, args.transcribe_s, work)
            finally:
                await nc.close()
    table("Worker memory per slot and cancel → slot free", rows)


if __name__ == "__main__":
    asyncio.run(main())
