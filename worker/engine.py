"""The Whisper engine: one pywhispercpp model per worker slot, loaded once and warmed up.

pywhispercpp keeps decode parameters between calls, so every job sets all of them. The model
runs in a thread (whisper.cpp releases the GIL); progress, new segments and the abort check are
callbacks fired on that thread. Segments and word timings are read straight from the whisper.cpp
context after `whisper_full`.

Long audio goes to whisper.cpp in chunks of `CHUNK_S`, because of how whisper.cpp (1.8) stops:
it computes the log-mel spectrogram of everything it is given before the first window (CPU time
in proportion to the audio's length, 2.4 s per 10 min on 2 cores, and 32 KB per audio second), and
it polls its abort callback only inside decoder graph runs on the CPU backend (on the GPU not at
all). Our encoder-begin callback refuses the next 30 s window once a job is aborted, so an abort
is honoured within one window plus one chunk's spectrogram however long the audio. Chunk
boundaries follow whisper's own seeking: a segment that ends within `CHUNK_EDGE_S` of a chunk's end
may be cut by it, so it is dropped and the next chunk starts at its beginning; time stamps are
shifted back onto the original timeline. Audio shorter than a chunk is transcribed in one call,
exactly as before.

An engine is closed explicitly (`close()`, `aclose()` or `with`): pywhispercpp frees the whisper.cpp
context only when its Model is garbage-collected, and the callbacks a transcription leaves on the
decode parameters refer back to the engine, a cycle through C++ that Python's collector cannot see.
Left to the collector, every engine that ever ran a job stays in memory (about 210 MB for tiny.en).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import _pywhispercpp as pw
import numpy as np
from pywhispercpp.model import Model

from jetscribe.errors import ModelError
from schemas import DecodeOptions, Segment, Task, Word
from worker.abort import AbortSignal
from worker.decode import SAMPLE_RATE, Samples
from worker.errors import JobAbortedError, RetryableError, UnsupportedJobError
from worker.words import CENTISECONDS, TokenPiece, merge_words

log = logging.getLogger(__name__)

WARMUP_SECONDS: Final = 1.0
CHUNK_S: Final = 300.0
"""Seconds of audio per whisper.cpp call (see the module docstring)."""
CHUNK_EDGE_S: Final = 5.0
"""A segment ending within this many seconds of a chunk's end is left to the next chunk."""
GREEDY_BEST_OF: Final = 5
RTF_SMOOTHING: Final = 0.3
"""Weight of the newest job in the engine's running estimate of seconds per second of audio."""


def _ignore(*_: object) -> None:
    return None


def _never(*_: object) -> bool:
    return False


def _always(*_: object) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class DecodeRequest:
    """What one job asks of the engine."""

    language: str | None
    task: Task
    options: DecodeOptions


@dataclass(frozen=True, slots=True)
class Transcription:
    segments: list[Segment]
    language: str
    """The requested language, or the one Whisper detected."""
    duration_secs: float


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callbacks fired on the whisper thread during a transcription."""

    on_progress: Callable[[int], None]
    on_segment: Callable[[Segment], None]
    abort: AbortSignal


class WhisperEngine:
    """One loaded model; not thread-safe, so each worker slot has its own."""

    def __init__(self, model_path: Path, *, name: str, threads: int, use_gpu: bool, flash_attn: bool) -> None:
        self.name = name
        self._threads = threads
        self._work: asyncio.Future[Transcription] | None = None
        self.lock = asyncio.Lock()
        """Held by the job using the model; the next job waits on it with its audio already decoded."""
        self._seconds_per_audio_second: float | None = None
        self._expected_end: float | None = None
        self._finished = asyncio.Event()
        try:
            self._model = Model(
                str(model_path),
                redirect_whispercpp_logs_to=None,
                context_params={"use_gpu": use_gpu, "flash_attn": use_gpu and flash_attn},
            )
        except Exception as exc:
            raise ModelError(f"cannot load Whisper model {model_path}: {exc}") from exc
        # pywhispercpp's Model keeps the whisper.cpp context and the decode parameters in attributes it does
        # not declare; the engine drives whisper_full on them directly.
        self._ctx: object | None = self._model._ctx  # type: ignore[attr-defined]
        self._params: Any = self._model._params  # type: ignore[attr-defined]
        if self._ctx is None:
            raise ModelError(f"whisper.cpp could not load {model_path}: is it a whisper.cpp GGML model?")
        self.multilingual = bool(pw.whisper_is_multilingual(self._ctx))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Free the model's memory; no transcription may be running (see `aclose`). Idempotent."""
        if self._ctx is None:
            return
        # Callbacks that refer to nothing replace the ones that refer back to this engine.
        pw.assign_progress_callback(self._params, _ignore)
        pw.assign_new_segment_callback(self._params, _ignore)
        pw.assign_abort_callback(self._params, _never)
        pw.assign_encoder_begin_callback(self._params, _always)
        pw.whisper_free(self._ctx)
        self._ctx = None
        self._model._ctx = None  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        """Wait for an aborted transcription to wind down, then `close()` off the event loop."""
        await self.idle()
        await asyncio.to_thread(self.close)

    @classmethod
    async def load(cls, model_path: Path, *, name: str, threads: int, use_gpu: bool, flash_attn: bool) -> WhisperEngine:
        """Load off the event loop and run the one-second silent warm-up inference."""

        def build() -> WhisperEngine:
            engine = cls(model_path, name=name, threads=threads, use_gpu=use_gpu, flash_attn=flash_attn)
            try:
                engine.warm_up()
            except BaseException:
                engine.close()
                raise
            return engine

        return await asyncio.to_thread(build)

    def warm_up(self) -> None:
        """Pay one-off costs (buffers, GPU kernels) before the first real job does."""
        silence = np.zeros(int(SAMPLE_RATE * WARMUP_SECONDS), dtype=np.float32)
        ignore = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())
        request = DecodeRequest(language="en", task="transcribe", options=DecodeOptions(beam_size=1))
        self.transcribe(silence, request, ignore)

    def check(self, request: DecodeRequest) -> None:
        """Raise UnsupportedJobError if this model cannot serve `request`."""
        if not self.multilingual and request.language not in (None, "en"):
            raise UnsupportedJobError(
                f"model {self.name!r} is English-only: it cannot transcribe language {request.language!r}; "
                "run workers with a multilingual model (e.g. WHISPER_MODEL=base)"
            )

    def _configure(self, request: DecodeRequest, hooks: Hooks, chunk: _Chunk) -> None:
        params = self._params
        options = request.options
        beam = options.beam_size > 1
        params.strategy = (
            pw.whisper_sampling_strategy.WHISPER_SAMPLING_BEAM_SEARCH
            if beam
            else pw.whisper_sampling_strategy.WHISPER_SAMPLING_GREEDY
        )
        params.beam_search = {"beam_size": options.beam_size if beam else -1, "patience": -1.0}
        params.greedy = {"best_of": GREEDY_BEST_OF}
        params.language = chunk.language or request.language or ("" if self.multilingual else "en")
        params.detect_language = False
        params.translate = request.task == "translate"
        params.temperature = options.temperature
        params.n_threads = self._threads
        params.initial_prompt = options.initial_prompt or ""
        params.token_timestamps = options.word_timestamps
        params.no_context = True
        params.no_timestamps = False
        params.single_segment = False
        params.offset_ms = 0
        params.duration_ms = 0
        # The progress callback fires only when print_progress is on.
        params.print_progress = True
        params.print_realtime = False
        params.print_timestamps = False
        params.print_special = False

        def on_new_segments(ctx: object, n_new: int, *_: object) -> None:
            total = pw.whisper_full_n_segments(ctx)
            for index in range(total - n_new, total):
                segment = self._segment(index, words=False, chunk=chunk)
                # Only segments this chunk keeps go out live; the rest come again from the next chunk.
                if chunk.edge_s is not None and segment.end - chunk.offset_s >= chunk.edge_s:
                    return
                hooks.on_segment(segment)

        def on_progress(percent: int, *_: object) -> None:
            hooks.on_progress(int(100 * (chunk.offset_s + chunk.duration_s * percent / 100) / chunk.total_s))

        pw.assign_progress_callback(params, on_progress)
        pw.assign_new_segment_callback(params, on_new_segments)
        pw.assign_abort_callback(params, lambda *_: hooks.abort.is_set())
        # Called before each 30 s window on every backend: returning False ends whisper_full there.
        pw.assign_encoder_begin_callback(params, lambda *_: not hooks.abort.is_set())

    async def run(self, samples: Samples, request: DecodeRequest, hooks: Hooks) -> Transcription:
        """Transcribe in a thread. When `hooks.abort` fires, raise JobAbortedError at once: whisper.cpp
        stops only at its next 30 s window (see the module docstring), which can take seconds, so the
        job ends now and the model winds down behind it; `idle()` waits for that before the model is
        reused."""
        await self.idle()
        loop = asyncio.get_running_loop()
        audio_s = samples.size / SAMPLE_RATE
        started = loop.time()
        if self._seconds_per_audio_second is not None:
            self._expected_end = started + audio_s * self._seconds_per_audio_second
        self._finished.clear()
        self._work = asyncio.ensure_future(asyncio.to_thread(self.transcribe, samples, request, hooks))
        try:
            transcription = await hooks.abort.guard(asyncio.shield(self._work))
        finally:
            self._expected_end = None
            self._finished.set()
        self._learn_speed((loop.time() - started) / max(audio_s, WARMUP_SECONDS))
        return transcription

    def _learn_speed(self, seconds_per_audio_second: float) -> None:
        previous = self._seconds_per_audio_second
        self._seconds_per_audio_second = (
            seconds_per_audio_second
            if previous is None
            else previous + RTF_SMOOTHING * (seconds_per_audio_second - previous)
        )

    async def nearly_free(self, lead_s: float) -> None:
        """Return once the model is free, or its current transcription should end within `lead_s`.

        The estimate comes from this engine's own speed on earlier jobs; before the first job it
        has none and returns at once.
        """
        loop = asyncio.get_running_loop()
        while self.lock.locked() and self._expected_end is not None:
            wait_s = self._expected_end - lead_s - loop.time()
            if wait_s <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), wait_s)

    async def idle(self) -> None:
        """Wait until the model is no longer busy with an aborted transcription."""
        work, self._work = self._work, None
        if work is not None:
            with contextlib.suppress(Exception):
                await work

    def transcribe(self, samples: Samples, request: DecodeRequest, hooks: Hooks) -> Transcription:
        """Run Whisper on `samples` (blocking: call it in a thread). Raises JobAbortedError when aborted."""
        if self._ctx is None:
            raise ModelError(f"the engine for model {self.name!r} is closed")
        self.check(request)
        total = samples.size
        total_s = total / SAMPLE_RATE
        segments: list[Segment] = []
        language = request.language
        start = 0
        while True:
            end = min(total, start + int(CHUNK_S * SAMPLE_RATE))
            chunk = _Chunk(
                offset_s=start / SAMPLE_RATE,
                duration_s=(end - start) / SAMPLE_RATE,
                total_s=total_s,
                first_index=len(segments),
                edge_s=None if end == total else (end - start) / SAMPLE_RATE - CHUNK_EDGE_S,
                language=language,
            )
            found = self._transcribe_chunk(samples[start:end], request, hooks, chunk)
            # Whisper detects the language once, in the first chunk; the others keep it, as one call would.
            language = language or pw.whisper_lang_str(pw.whisper_full_lang_id(self._ctx))
            kept = found if chunk.edge_s is None else _before_edge(found, chunk)
            segments.extend(kept)
            if end == total:
                break
            start += _advance(found, kept, chunk)
        assert language is not None
        return Transcription(segments=segments, language=language, duration_secs=round(total_s, 3))

    def _transcribe_chunk(self, samples: Samples, request: DecodeRequest, hooks: Hooks, chunk: _Chunk) -> list[Segment]:
        """Segments of one chunk, on the original timeline."""
        self._configure(request, hooks, chunk)
        status = pw.whisper_full(self._ctx, self._params, samples, samples.size)
        if hooks.abort.is_set():
            raise JobAbortedError(hooks.abort.reason or "cancelled")
        if status != 0:
            raise RetryableError(f"whisper.cpp failed with status {status}")
        words = request.options.word_timestamps
        return [self._segment(i, words=words, chunk=chunk) for i in range(pw.whisper_full_n_segments(self._ctx))]

    def _segment(self, index: int, *, words: bool, chunk: _Chunk) -> Segment:
        """Segment `index` of the last whisper_full call, shifted by the chunk's offset."""
        ctx = self._ctx
        limit = chunk.duration_s
        start = min(pw.whisper_full_get_segment_t0(ctx, index) / CENTISECONDS, limit)
        end = max(start, min(pw.whisper_full_get_segment_t1(ctx, index) / CENTISECONDS, limit))
        text = pw.whisper_full_get_segment_text(ctx, index).decode("utf-8", "replace").strip()
        found = merge_words(self._pieces(index), start, end) if words else []
        offset = chunk.offset_s
        return Segment(
            index=chunk.first_index + index,
            start=round(start + offset, 3),
            end=round(end + offset, 3),
            text=text,
            words=[Word(start=round(w.start + offset, 3), end=round(w.end + offset, 3), word=w.word,
                        probability=w.probability) for w in found],
        )  # fmt: skip

    def _pieces(self, index: int) -> list[TokenPiece]:
        ctx = self._ctx
        eot = pw.whisper_token_eot(ctx)
        pieces = []
        for j in range(pw.whisper_full_n_tokens(ctx, index)):
            data = pw.whisper_full_get_token_data(ctx, index, j)
            if data.id >= eot:
                continue
            pieces.append(TokenPiece(pw.whisper_token_to_bytes(ctx, data.id), data.t0, data.t1, float(data.p)))
        return pieces


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Where one whisper.cpp call sits in the job's audio."""

    offset_s: float
    duration_s: float
    total_s: float
    first_index: int
    """Index of the chunk's first segment in the whole transcript."""
    edge_s: float | None
    """Chunk-relative time from which segments are left to the next chunk; None for the last chunk."""
    language: str | None
    """The language to use: requested, or detected in the first chunk."""


def _before_edge(found: list[Segment], chunk: _Chunk) -> list[Segment]:
    """The leading segments of a chunk that end before its edge."""
    assert chunk.edge_s is not None
    kept: list[Segment] = []
    for segment in found:
        if segment.end - chunk.offset_s >= chunk.edge_s:
            break
        kept.append(segment)
    return kept


def _advance(found: list[Segment], kept: list[Segment], chunk: _Chunk) -> int:
    """Samples from this chunk's start to the next one's: the first dropped segment's start, or the edge."""
    assert chunk.edge_s is not None
    dropped = found[len(kept) :]
    next_s = dropped[0].start - chunk.offset_s if dropped else chunk.edge_s
    if kept:
        next_s = max(next_s, kept[-1].end - chunk.offset_s)
    # Segments never exceed one 30 s window, so this is well past the chunk's start; the floor guards the loop.
    return max(int(next_s * SAMPLE_RATE), int(CHUNK_EDGE_S * SAMPLE_RATE))
