"""The reference every pipeline figure is compared with: decode + Whisper in one plain process, with the decoding
and the engine the service itself has.

A plain loop builds its engine exactly as a worker does, through the one shared constructor
(`build_engine(engine_spec(settings, model))`, worker/engine.py) from the same `Settings` the service reads: the
service's defaults (flash attention on, the GPU when the build has one) and the variables a benchmark gives both
sides (`engine_env`). So a baseline differs from the service by the service alone, never by its engine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, get_args

from benchmarks.service import CACHE
from jetscribe.config import ENGINES, ComputeType, EngineKind, Settings
from jetscribe.stage.decode import Samples, decode_file
from schemas import DecodeOptions, Task
from worker.engine import DecodeRequest, Transcription, build_engine, engine_spec, ignore_hooks


@dataclass(frozen=True, slots=True)
class EngineChoice:
    """One engine configuration of a worker: the engine, CTranslate2's compute type and batch size, and the
    worker's slots (several slots of a batched CTranslate2 model batch their jobs together)."""

    engine: EngineKind = "whispercpp"
    compute_type: ComputeType = "auto"
    batch_size: int = 1
    slots: int = 1

    @classmethod
    def parse(cls, text: str) -> EngineChoice:
        """`ENGINE[:COMPUTE_TYPE[:BATCH_SIZE[:SLOTS]]]`, e.g. `whispercpp`, `ctranslate2:int8:8:4`; ValueError
        otherwise."""
        parts = text.strip().split(":")
        engine = parts[0]
        compute_type = parts[1] if len(parts) > 1 else "auto"
        batch_size = parts[2] if len(parts) > 2 else "1"
        slots = parts[3] if len(parts) > 3 else "1"
        if len(parts) > 4 or engine not in ENGINES or compute_type not in get_args(ComputeType):
            raise ValueError(
                f"{text!r} is not ENGINE[:COMPUTE_TYPE[:BATCH_SIZE[:SLOTS]]] with ENGINE one of {', '.join(ENGINES)} "
                f"and COMPUTE_TYPE one of {', '.join(get_args(ComputeType))}"
            )
        if not all(n.isdigit() and int(n) >= 1 for n in (batch_size, slots)):
            raise ValueError(f"{text!r}: the batch size and slots must be whole numbers ≥ 1")
        if engine == "whispercpp" and (compute_type != "auto" or batch_size != "1"):
            raise ValueError(f"{text!r}: whisper.cpp takes no compute type (its model file has one) or batch size")
        return cls(engine, compute_type, int(batch_size), int(slots))  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        slots = f", {self.slots} slots" if self.slots > 1 else ""
        if self.engine == "whispercpp":
            return f"whispercpp{slots}"
        return f"ctranslate2 {self.compute_type}, batch {self.batch_size}{slots}"

    def env(self) -> dict[str, str]:
        """The worker's variables that choose this configuration."""
        return {
            "JETSCRIBE_ENGINE": self.engine,
            "JETSCRIBE_COMPUTE_TYPE": self.compute_type,
            "JETSCRIBE_BATCH_SIZE": str(self.batch_size),
            "JETSCRIBE_WORKER_SLOTS": str(self.slots),
        }


def engine_env(model: str, *, threads: int, choice: EngineChoice | None = None) -> dict[str, str]:
    """The variables that make a worker serve `model` with `choice` on `threads` threads, its weights (GGML file
    or CTranslate2 directory) from the benchmarks' model cache. Give them to `jetscribe serve` and to
    `Settings.from_env` alike."""
    return {
        "WHISPER_MODEL": model,
        "WHISPER_MODEL_PATH": "",
        "JETSCRIBE_MODELS_DIR": str(CACHE),
        "JETSCRIBE_THREADS": str(threads),
        **(choice or EngineChoice()).env(),
    }


@dataclass(frozen=True, slots=True)
class PlainRun:
    """One file through the plain loop."""

    transcription: Transcription
    engine_s: float
    """Seconds the engine spent on it."""
    wall_s: float
    """Seconds of decode + transcribe."""


class PlainTranscriber:
    """Decode as a worker does (`jetscribe.stage.decode`), transcribe with the service's engine and a default job's
    options; nothing else. A context manager: the engine's memory is freed on exit."""

    def __init__(self, settings: Settings, model: str | None = None) -> None:
        """Load and warm up the engine `settings` choose for `model` (default: the first model they serve), as a
        worker slot does (blocking). Raises ModelError."""
        self.settings = settings
        self.engine = build_engine(engine_spec(settings, model or settings.served_models[0]))
        try:
            self.engine.warm_up()
        except BaseException:
            self.engine.close()
            raise
        self._hooks = ignore_hooks()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.engine.close()

    def decode(self, path: Path) -> Samples:
        """16 kHz mono float32 samples of `path`, decoded as a worker decodes a job's audio (an ffmpeg subprocess;
        blocking: not on an event loop's thread)."""
        return asyncio.run(decode_file(path, max_audio_s=self.settings.max_audio_s))

    def transcribe(
        self, samples: Samples, language: str | None = "en", task: Task = "transcribe"
    ) -> tuple[Transcription, float]:
        """The transcription of `samples`, and the seconds the engine spent on it."""
        request = DecodeRequest(language, task, DecodeOptions(), vad=self.settings.vad)
        start = time.perf_counter()
        transcription = self.engine.transcribe(samples, request, self._hooks)
        return transcription, time.perf_counter() - start

    def run(self, path: Path, language: str | None = "en") -> PlainRun:
        """Decode + transcribe one file."""
        start = time.perf_counter()
        transcription, engine_s = self.transcribe(self.decode(path), language)
        return PlainRun(transcription, engine_s, time.perf_counter() - start)
