"""Quantized models against f16: f16, q8_0 and q5_0 of tiny.en and base, side by side on the same clips.

For each model file: its size, the seconds whisper takes per minute of audio (wall clock, and CPU
seconds of the process, which shared cores disturb less), the peak RSS of a fresh process that loads it
and transcribes every clip, and the word error rate (Whisper's English normaliser, jiwer) on the English
fixtures (en1–en6 and the one-minute clip). Decoding is a worker's for a default job (the whisper.cpp engine built
from the service's settings as `benchmarks.plain` builds it, beam 5, word timestamps). Each measurement runs in its
own subprocess, and the models take turns round by round, so drift in machine load hits all alike.

    .venv/bin/python -m benchmarks.quantized [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import numpy as np

from benchmarks.report import machine, median
from benchmarks.service import model_path
from jetscribe.ffmpeg import ffmpeg_binary
from jetscribe.models.files import model_quantization
from jetscribe.models.quantize import quantize_model, quantized_path

FIXTURES: Final = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio"
CLIPS: Final = [*(f"en{i}.wav" for i in range(1, 7)), "long60.ogg"]
SAMPLE_RATE: Final = 16_000
MODELS: Final = ("tiny.en", "base")
TYPES: Final = ("q8_0", "q5_0")


def measure(model: Path, samples_dir: Path, threads: int) -> dict[str, object]:
    """Run in a fresh process: load `model`, transcribe every clip once; times, transcripts, peak RSS."""
    from benchmarks.plain import engine_env
    from jetscribe.config import Settings
    from schemas import DecodeOptions
    from worker.engine import DecodeRequest, build_engine, engine_spec, ignore_hooks

    # The service's settings for a worker given this one file (WHISPER_MODEL_PATH).
    name = model.name.removeprefix("ggml-").removesuffix(".bin")
    settings = Settings.from_env({**engine_env(name, threads=threads), "WHISPER_MODEL_PATH": str(model)})
    spec = engine_spec(settings, name)
    start = time.perf_counter()
    engine = build_engine(spec)
    load_s = time.perf_counter() - start
    hooks = ignore_hooks()
    request = DecodeRequest(language="en", task="transcribe", options=DecodeOptions())
    transcripts, wall_s, cpu_s = {}, 0.0, 0.0
    for clip in CLIPS:
        samples = np.load(samples_dir / f"{clip}.npy")
        start, start_cpu = time.perf_counter(), time.process_time()
        segments = engine.transcribe(samples, request, hooks).segments
        wall_s += time.perf_counter() - start
        cpu_s += time.process_time() - start_cpu
        transcripts[clip] = " ".join(segment.text for segment in segments)
    # ru_maxrss is in KiB on Linux.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    return {"load_s": load_s, "wall_s": wall_s, "cpu_s": cpu_s, "peak_rss_mb": peak_mb, "transcripts": transcripts}


def decode_clips(dest: Path) -> float:
    """Decode every clip to 16 kHz mono float32 `.npy` files in `dest`; the total audio in seconds."""
    total = 0.0
    for clip in CLIPS:
        pcm = subprocess.run(
            [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(FIXTURES / clip), "-f", "f32le", "-ac", "1",
             "-ar", str(SAMPLE_RATE), "-"],
            capture_output=True,
            check=True,
        ).stdout  # fmt: skip
        samples = np.frombuffer(pcm, dtype=np.float32)
        np.save(dest / f"{clip}.npy", samples)
        total += len(samples) / SAMPLE_RATE
    return total


def word_error_rate(transcripts: dict[str, str]) -> float:
    """Corpus WER over every clip (all errors / all reference words), both sides through Whisper's normaliser."""
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()
    texts = json.loads((FIXTURES / "texts.json").read_text())
    keys = [clip.split(".")[0] for clip in CLIPS]
    return float(
        jiwer.wer(
            [normalise(texts[k]) for k in keys], [normalise(transcripts[c]) for c, k in zip(CLIPS, keys, strict=True)]
        )
    )


def prepare(work: Path) -> tuple[list[Path], dict[Path, float]]:
    """The six model files (f16 from the shared cache, quantized afresh here) and each quantization's seconds."""
    files, quantize_s = [], {}
    for name in MODELS:
        source = model_path(name)
        files.append(source)
        for qtype in TYPES:
            start = time.perf_counter()
            dest = quantize_model(source, work / quantized_path(source, qtype).name, qtype)
            quantize_s[dest] = time.perf_counter() - start
            files.append(dest)
    return files, quantize_s


def run_measurement(model: Path, samples_dir: Path, threads: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.quantized", "--measure", str(model), str(samples_dir), str(threads)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds over all six models (median taken)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--measure", nargs=3, metavar=("MODEL", "SAMPLES_DIR", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        model, samples_dir, threads = args.measure
        print(json.dumps(measure(Path(model), Path(samples_dir), int(threads))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        audio_s = decode_clips(work)
        files, quantize_s = prepare(work)
        runs: dict[Path, list[dict[str, object]]] = {f: [] for f in files}
        for _ in range(args.runs):
            for f in files:
                runs[f].append(run_measurement(f, work, args.threads))
        print_table(files, runs, quantize_s, audio_s, args)


def print_table(
    files: list[Path],
    runs: dict[Path, list[dict[str, object]]],
    quantize_s: dict[Path, float],
    audio_s: float,
    args: argparse.Namespace,
) -> None:
    print("\n## Quantized models (CPU)\n")
    print(f"machine: {machine()}; {args.threads} threads, median of {args.runs} runs, {audio_s:.0f} s of audio")
    print()
    print(
        "| model | weights | file size | quantize | load | wall s / audio min | vs f16 | CPU s / audio min | vs f16 "
        "| peak RSS | vs f16 | WER |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    f16: dict[str, tuple[float, float, float]] = {}
    for f in files:
        results = runs[f]

        def figure(key: str, results: list[dict[str, object]] = results) -> float:
            return median([float(r[key]) for r in results])  # type: ignore[arg-type]

        family = f.name.removeprefix("ggml-").removesuffix(".bin").removesuffix("-q8_0").removesuffix("-q5_0")
        quantization = model_quantization(f)
        wall, cpu = figure("wall_s") / audio_s * 60, figure("cpu_s") / audio_s * 60
        rss = figure("peak_rss_mb")
        if quantization == "f16":
            f16[family] = (wall, cpu, rss)
        f16_wall, f16_cpu, f16_rss = f16[family]
        wers = sorted({round(word_error_rate(r["transcripts"]), 4) for r in results})  # type: ignore[arg-type]
        made = f"{quantize_s[f]:.1f} s" if f in quantize_s else "—"
        size, load = f.stat().st_size / 1e6, figure("load_s") * 1000
        print(
            f"| {family} | {quantization} | {size:.1f} MB | {made} | {load:.0f} ms "
            f"| {wall:.1f} s | {wall / f16_wall:.2f} | {cpu:.1f} s | {cpu / f16_cpu:.2f} "
            f"| {rss:.0f} MB | {rss / f16_rss:.2f} | {' / '.join(f'{w:.1%}' for w in wers)} |"
        )


if __name__ == "__main__":
    main()
