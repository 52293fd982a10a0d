"""How long a cancelled transcription keeps the model busy: abort → engine idle, before and after chunking.

"before" is whisper.cpp given the whole audio in one `whisper_full` call with only its abort callback
(how the engine ran until issue 13): whisper.cpp first computes the log-mel spectrogram of all of
it, polls no callback while doing so nor during an encoder pass, and on the GPU polls the abort
callback not at all. "after" is the engine as it is: 300 s chunks and an encoder-begin callback
that refuses the next 30 s window. Each run aborts `--after-s` seconds into the transcription.

    .venv/bin/python -m benchmarks.cancel_latency [--sizes 600,3600] [--after-s 1,10]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

import _pywhispercpp as pw
import numpy as np

from benchmarks.plain import engine_env
from benchmarks.report import table
from benchmarks.worker_memory import speech_loop
from jetscribe.config import Settings
from jetscribe.ffmpeg import ffmpeg_binary
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import Samples
from jetscribe.stage.errors import JobAbortedError
from schemas import DecodeOptions
from worker import whispercpp as engine_module
from worker import whisperlib
from worker.engine import DecodeRequest, Engine, Hooks, build_engine, engine_spec
from worker.whispercpp import WhisperCppEngine


class WholeFileEngine(WhisperCppEngine):
    """The engine as it ran before: the whole audio in one call, no encoder-begin callback."""

    def _configure(
        self,
        request: DecodeRequest,
        hooks: Hooks,
        chunk: engine_module._Chunk,
        attempts: engine_module._Attempts,
        state: whisperlib.DecoderState,
    ) -> None:
        super()._configure(request, hooks, chunk, attempts, state)
        pw.clear_encoder_begin_callback(self._params)


def samples_of(path: Path) -> Samples:
    pcm = subprocess.run(
        [ffmpeg_binary(), "-loglevel", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", "16000", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(pcm, dtype=np.float32)


async def abort_to_idle(engine: Engine, samples: Samples, after_s: float) -> float:
    abort = AbortSignal()
    hooks = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=abort)
    request = DecodeRequest(language="en", task="transcribe", options=DecodeOptions(beam_size=5))
    running = asyncio.create_task(engine.run(samples, request, hooks))
    await asyncio.sleep(after_s)
    aborted_at = time.monotonic()
    abort.trigger("cancelled")
    try:
        await running
    except JobAbortedError:
        pass
    await engine.idle()
    return time.monotonic() - aborted_at


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="600,3600", help="audio lengths in seconds, comma-separated")
    parser.add_argument("--after-s", default="1,10", help="seconds into the transcription to abort, comma-separated")
    args = parser.parse_args()
    # The service's engine for tiny.en on 2 threads (`benchmarks.plain`), and the same spec with chunking undone.
    spec = await asyncio.to_thread(engine_spec, Settings.from_env(engine_env("tiny.en", threads=2)), "tiny.en")
    engines: dict[str, Engine] = {
        "before (whole file)": await asyncio.to_thread(WholeFileEngine, spec),
        "after (300 s chunks)": await asyncio.to_thread(build_engine, spec),
    }
    whole = engine_module.CHUNK_S
    rows: list[tuple[str, str]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size_s in (int(s) for s in args.sizes.split(",")):
                samples = samples_of(speech_loop(size_s, Path(tmp) / f"speech{size_s}.ogg"))
                for label, engine in engines.items():
                    engine_module.CHUNK_S = 1e9 if engine.__class__ is WholeFileEngine else whole
                    for after_s in (float(a) for a in args.after_s.split(",")):
                        seconds = await abort_to_idle(engine, samples, after_s)
                        rows.append((f"{size_s // 60} min audio, abort at {after_s:g} s, {label}", f"{seconds:.2f} s"))
                del samples
    finally:
        engine_module.CHUNK_S = whole
        for engine in engines.values():
            engine.close()
    table("Abort → engine idle (tiny.en, beam 5, 2 threads, CPU)", rows)


if __name__ == "__main__":
    asyncio.run(main())
