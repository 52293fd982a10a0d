"""The reference every pipeline figure is compared with: ffmpeg decode + Whisper in one plain process,
with the same model and decode parameters a worker uses."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np

from jetscribe.ffmpeg import ffmpeg_binary
from jetscribe.stage.abort import AbortSignal
from schemas import DecodeOptions, Task
from worker.engine import DecodeRequest, Hooks, WhisperEngine


class PlainTranscriber:
    """Decode with an ffmpeg subprocess, transcribe with the engine's parameters; nothing else."""

    def __init__(self, model_path: Path, *, threads: int) -> None:
        self.engine = WhisperEngine(model_path, name=model_path.stem, threads=threads, use_gpu=False, flash_attn=False)
        self.engine.warm_up()
        self._hooks = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())

    def decode(self, path: Path) -> np.ndarray:
        pcm = subprocess.run(
            [
                ffmpeg_binary(),
                "-nostdin",
                "-loglevel",
                "error",
                "-i",
                str(path),
                "-f",
                "f32le",
                "-ac",
                "1",
                "-ar",
                "16000",
                "-",
            ],
            check=True,
            capture_output=True,
        ).stdout
        return np.frombuffer(pcm, dtype=np.float32)

    def transcribe(self, samples: np.ndarray, language: str | None = "en", task: Task = "transcribe") -> float:
        """Seconds the engine spent on `samples`."""
        start = time.perf_counter()
        self.engine.transcribe(samples, DecodeRequest(language, task, DecodeOptions()), self._hooks)
        return time.perf_counter() - start

    def run(self, path: Path) -> float:
        """Wall seconds for decode + transcribe of one file."""
        start = time.perf_counter()
        self.transcribe(self.decode(path))
        return time.perf_counter() - start
