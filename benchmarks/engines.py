"""Engines side by side: jetscribe end to end with each engine configuration, against plain loops on the engines
themselves, on one long clip (latency) and a backlog of short clips (throughput), in one interleaved run.

    .venv/bin/python -m benchmarks.engines [--model base] [--threads 2] [--runs 3] [--clip-s 300] [--backlog 20x30]
        [--service whispercpp,ctranslate2:int8:1,ctranslate2:int8:8:4]
        [--plain whispercpp,ctranslate2:int8:1,ctranslate2:float32:1,ctranslate2:int8:8] [--workloads latency,backlog]

An engine configuration is `ENGINE[:COMPUTE_TYPE[:BATCH_SIZE[:SLOTS]]]` (`JETSCRIBE_ENGINE`,
`JETSCRIBE_COMPUTE_TYPE`, `JETSCRIBE_BATCH_SIZE`, `JETSCRIBE_WORKER_SLOTS`: the slots of a batched CTranslate2 model
put their jobs' chunks in one batch). The systems:

- jetscribe end to end (`--service`): a fresh `jetscribe serve` (embedded NATS, gateway, one worker process with
  the configuration's slots, one by default) per measurement, every setting at the service's default but the
  model, the threads and the engine configuration; every clip of the workload is submitted over HTTP (`POST /jobs`,
  language `en`) at once, and the wall time runs from the first upload to the last job's `done`.
- plain loops (`--plain`): ffmpeg decode + the engine's `transcribe`, clip after clip, in a fresh subprocess per
  measurement (so its peak RSS is its own), the engine built exactly as a worker builds it (`benchmarks.plain`):
  whisper.cpp through pywhispercpp, CTranslate2 through faster-whisper (batch size > 1: its
  `BatchedInferencePipeline`). The wall time runs over the loop, the model already loaded and warmed up, as the
  service's is.

Workloads: `latency`, one clip of about `--clip-s` seconds; `backlog`, N clips of about S seconds each
(`--backlog NxS`), each starting at a different sentence. Every clip is English espeak-ng speech stitched from the
twenty sentences of the `long60` fixture's story (`benchmarks.audio.story_sentences`: no 30 s window hears a sentence
twice, which the fixtures' six sentences do and compression-ratio fallbacks mistake for a loop), cut after its last
whole sentence, so its reference text is exact.

Each repetition (`--runs`) measures every system once per workload, the systems' order rotating by one from one
repetition to the next, so drift in machine load hits all alike; the figures are medians. Per system:

- wall s: median (every run in brackets); × fastest plain: against the fastest plain loop's median on the same
  model; × own plain: against the plain loop with the same engine configuration, when there is one;
- word error rate: all errors over all reference words of the workload, both sides through Whisper's English
  normaliser (`whisper-normalizer`), scored with `jiwer` (as `benchmarks.quality`);
- peak RSS (VmHWM) of the process that transcribes: the worker process, or the plain loop's own;
- engine busy: seconds in the engine's `transcribe` (the jobs' `timings.transcribe_s`) over the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from benchmarks.audio import speech, story_sentences, whole_sentences
from benchmarks.plain import EngineChoice, PlainTranscriber, engine_env
from benchmarks.report import machine, median
from benchmarks.service import free_port, jetscribe_process, peak_rss_mb, service_env
from client import JetscribeClient
from jetscribe.config import Settings
from schemas import Job, JobTimings, Segment

ROOT: Final = Path(__file__).resolve().parent.parent
SERVICE_DEFAULT: Final = "whispercpp,ctranslate2:int8:1,ctranslate2:int8:8:4"
PLAIN_DEFAULT: Final = "whispercpp,ctranslate2:int8:1,ctranslate2:float32:1,ctranslate2:int8:8"
WORKLOADS: Final = ("latency", "backlog")
# A measurement past TIMEOUT_BASE_S + TIMEOUT_PER_AUDIO_S × its audio seconds has hung: the run stops there.
TIMEOUT_BASE_S: Final = 600.0
TIMEOUT_PER_AUDIO_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class Workload:
    name: Literal["latency", "backlog"]
    title: str
    clips: list[Path]
    references: list[str]
    """What each clip says."""
    audio_s: float
    """All clips together."""


@dataclass(frozen=True, slots=True)
class System:
    side: Literal["service", "plain"]
    choice: EngineChoice

    @property
    def label(self) -> str:
        if self.side == "service":
            return f"jetscribe, {self.choice.label}"
        library = "pywhispercpp" if self.choice.engine == "whispercpp" else "faster-whisper"
        if self.choice.batch_size > 1:
            library += " BatchedInferencePipeline"
        return f"plain loop, {self.choice.label} ({library})"


@dataclass(frozen=True, slots=True)
class Measurement:
    wall_s: float
    engine_s: float
    peak_rss_mb: float
    texts: list[str]
    """The transcript of each clip, in the workload's order."""


def transcript(segments: Sequence[Segment]) -> str:
    return " ".join(segment.text for segment in segments)


def word_error_rate(references: Sequence[str], texts: Sequence[str]) -> float:
    """All errors over all reference words, both sides through Whisper's English normaliser."""
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()
    return float(jiwer.wer([normalise(r) for r in references], [normalise(t) for t in texts]))


# The two sides --------------------------------------------------------------------------------------------------


async def through_service(system: System, workload: Workload, args: argparse.Namespace, tmp: Path) -> Measurement:
    """A fresh `jetscribe serve` with `system`'s engine; every clip submitted at once; wall time to the last done."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="serve-", dir=tmp))
    env = service_env(data, port, **engine_env(args.model, threads=args.threads, choice=system.choice))
    base = f"http://127.0.0.1:{port}"
    async with jetscribe_process("serve", env, f"{base}/health"), JetscribeClient(base) as client:
        health = await client.health()
        (worker,) = health.workers
        _check_served(system, [(m.engine, m.compute_type, m.batch_size) for m in worker.models if m.name == args.model])
        start = time.perf_counter()
        job_ids = [await client.submit(clip, language="en") for clip in workload.clips]
        jobs = await asyncio.gather(*(client.wait(job_id) for job_id in job_ids))
        wall_s = time.perf_counter() - start
        rss = peak_rss_mb(worker.pid)
    return Measurement(
        wall_s=wall_s,
        engine_s=sum(_finished(job).transcribe_s for job in jobs),
        peak_rss_mb=rss,
        texts=[transcript(job.segments) for job in jobs],
    )


def _finished(job: Job) -> JobTimings:
    if job.status != "done" or job.timings is None:
        raise RuntimeError(f"job {job.id} ended {job.status}: {job.error}")
    return job.timings


async def plain_loop(system: System, workload: Workload, args: argparse.Namespace) -> Measurement:
    """The plain loop over the workload's clips in a fresh subprocess (`--plain-loop`), with the variables a
    worker of `system`'s configuration would read."""
    env = {**os.environ, **engine_env(args.model, threads=args.threads, choice=system.choice)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.engines", "--plain-loop", *map(str, workload.clips),
        env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"{system.label} exited with {process.returncode}:\n{err.decode(errors='replace')[-4000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    _check_served(system, [(result["engine"], result["compute_type"], result["batch_size"])])
    return Measurement(
        wall_s=result["wall_s"], engine_s=result["engine_s"], peak_rss_mb=result["peak_rss_mb"], texts=result["texts"]
    )


def run_plain_loop(clips: Sequence[Path]) -> dict[str, object]:
    """In the subprocess: the engine the environment's settings choose, loaded and warmed up, then every clip."""
    with PlainTranscriber(Settings.from_env()) as plain:
        texts, engine_s = [], 0.0
        start = time.perf_counter()
        for clip in clips:
            run = plain.run(clip)
            engine_s += run.engine_s
            texts.append(transcript(run.transcription.segments))
        wall_s = time.perf_counter() - start
        engine = plain.engine
    return {
        "wall_s": wall_s,
        "engine_s": engine_s,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "texts": texts,
        "engine": engine.kind,
        "compute_type": engine.compute_type,
        "batch_size": engine.batch_size,
    }


def _check_served(system: System, served: list[tuple[str, str | None, int]]) -> None:
    """Fail the run unless the engine that ran is the configuration asked for (`auto` takes any compute type)."""
    choice = system.choice
    if len(served) != 1:
        raise RuntimeError(f"{system.label}: the worker serves {len(served)} models of that name, not one")
    ((engine, compute_type, batch_size),) = served
    wanted = choice.compute_type in ("auto", compute_type) if choice.engine == "ctranslate2" else compute_type is None
    if engine != choice.engine or not wanted or batch_size != choice.batch_size:
        raise RuntimeError(
            f"{system.label}: the engine ran as {engine} {compute_type}, batch {batch_size}, not as configured"
        )


# The run --------------------------------------------------------------------------------------------------------


def workloads(names: Sequence[str], args: argparse.Namespace, tmp: Path) -> list[Workload]:
    made: list[Workload] = []
    pool = story_sentences()
    for name in names:
        if name == "latency":
            length, text = whole_sentences(args.clip_s, pool=pool)
            clip = speech(length, tmp / "latency.flac", pool=pool)
            made.append(Workload("latency", "one clip", [clip], [text], length))
        else:
            count, seconds = args.backlog
            clips, texts, total_s = [], [], 0.0
            for i in range(count):
                length, text = whole_sentences(seconds, offset=i, pool=pool)
                clips.append(speech(length, tmp / f"backlog{i:03}.flac", offset=i, pool=pool))
                texts.append(text)
                total_s += length
            title = f"{count} clips of about {seconds:g} s, queued at once"
            made.append(Workload("backlog", title, clips, texts, total_s))
    return made


async def measure(
    systems: Sequence[System], loads: Sequence[Workload], args: argparse.Namespace, tmp: Path
) -> dict[tuple[str, System], list[Measurement]]:
    """Every system on every workload `--runs` times, interleaved: one round over the systems per workload and
    repetition, each round starting one system later than the one before."""
    results: dict[tuple[str, System], list[Measurement]] = {(w.name, s): [] for w in loads for s in systems}
    for run in range(args.runs):
        for workload in loads:
            shift = run % len(systems)
            for system in [*systems[shift:], *systems[:shift]]:
                limit_s = TIMEOUT_BASE_S + TIMEOUT_PER_AUDIO_S * workload.audio_s
                async with asyncio.timeout(limit_s):
                    if system.side == "service":
                        found = await through_service(system, workload, args, tmp)
                    else:
                        found = await plain_loop(system, workload, args)
                results[(workload.name, system)].append(found)
                wer = word_error_rate(workload.references, found.texts)
                print(
                    f"run {run + 1}/{args.runs}, {workload.name}, {system.label}: {found.wall_s:.1f} s, "
                    f"WER {100 * wer:.1f} %, peak RSS {found.peak_rss_mb:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def report(
    systems: Sequence[System],
    loads: Sequence[Workload],
    results: dict[tuple[str, System], list[Measurement]],
    args: argparse.Namespace,
    loadavg: tuple[float, float],
) -> None:
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.engines", *sys.argv[1:]])
    print("\n## Engines side by side\n")
    print(f"`{command}`\n")
    print(
        f"machine: {machine()}; model {args.model}, {args.threads} threads, median of {args.runs} interleaved runs; "
        f"load average (1 min) {loadavg[0]:.2f} at the start, {loadavg[1]:.2f} at the end"
    )
    for workload in loads:
        walls = {s: median([m.wall_s for m in results[(workload.name, s)]]) for s in systems}
        plain = [s for s in systems if s.side == "plain"]
        fastest = min(plain, key=walls.__getitem__) if plain else None
        audio_s = workload.audio_s
        print(f"\n### {workload.name.capitalize()}: {workload.title} ({audio_s:.0f} s of audio)\n")
        print("| system | wall s | × fastest plain | × own plain | × real time | WER | peak RSS | engine busy |")
        print("|---|---|---|---|---|---|---|---|")
        for system in systems:
            runs = results[(workload.name, system)]
            wall = walls[system]
            own = next((s for s in plain if s.choice == system.choice), None) if system.side == "service" else None
            wers = sorted({round(100 * word_error_rate(workload.references, m.texts), 1) for m in runs})
            cells = [
                system.label,
                f"{wall:.1f} ({', '.join(f'{m.wall_s:.1f}' for m in runs)})",
                f"{wall / walls[fastest]:.2f}" if fastest is not None else "—",
                f"{wall / walls[own]:.2f}" if own is not None else "—",
                f"{audio_s / wall:.1f}",
                " / ".join(f"{w:.1f} %" for w in wers),
                f"{median([m.peak_rss_mb for m in runs]):.0f} MB",
                f"{100 * median([m.engine_s / m.wall_s for m in runs]):.1f} %",
            ]
            print(f"| {' | '.join(cells)} |")
        if fastest is not None:
            print(f"\nFastest plain loop: {fastest.label}.")


def _choices(text: str) -> list[EngineChoice]:
    try:
        return [EngineChoice.parse(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _backlog(text: str) -> tuple[int, float]:
    count, _, seconds = text.lower().partition("x")
    try:
        parsed = int(count), float(seconds)
    except ValueError:
        parsed = (0, 0.0)
    if parsed[0] < 1 or parsed[1] <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not NxS: N clips (≥ 1) of S seconds, e.g. 20x30")
    return parsed


def _workload_names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: workloads are {', '.join(WORKLOADS)}, comma-separated")
    return names


async def main(args: argparse.Namespace) -> None:
    systems = [System("service", c) for c in args.service] + [System("plain", c) for c in args.plain]
    started = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        loads = workloads(args.workloads, args, Path(tmp))
        results = await measure(systems, loads, args, Path(tmp))
    report(systems, loads, results, args, (started, os.getloadavg()[0]))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base", help="model name, served by every system (default base)")
    parser.add_argument("--threads", type=int, default=2, help="engine threads, every system (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions; the figures are medians (default 3)")
    parser.add_argument(
        "--clip-s", type=float, default=300.0, help="latency clip: at most this many seconds, whole sentences (300)"
    )
    parser.add_argument(
        "--backlog", type=_backlog, default=(20, 30.0), metavar="NxS", help="backlog: N clips of S seconds (20x30)"
    )
    parser.add_argument(
        "--service", type=_choices, default=_choices(SERVICE_DEFAULT), metavar="CONFIGS",
        help=f"jetscribe end to end, one per engine configuration (default {SERVICE_DEFAULT}; '' for none)",
    )  # fmt: skip
    parser.add_argument(
        "--plain", type=_choices, default=_choices(PLAIN_DEFAULT), metavar="CONFIGS",
        help=f"plain loops, one per engine configuration (default {PLAIN_DEFAULT}; '' for none)",
    )  # fmt: skip
    parser.add_argument(
        "--workloads", type=_workload_names, default=list(WORKLOADS), help="latency, backlog or both (default)"
    )
    parser.add_argument("--plain-loop", nargs="+", type=Path, metavar="CLIP", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.threads < 1:
        parser.error("--runs and --threads must be at least 1")
    for side in (args.service, args.plain):
        if len(set(side)) != len(side):
            parser.error("name each engine configuration once per side")
    if not args.service and not args.plain:
        parser.error("--service and --plain name no system between them")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.plain_loop:
        print(json.dumps(run_plain_loop(arguments.plain_loop)))
    else:
        asyncio.run(main(arguments))
