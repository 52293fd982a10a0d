"""The Whisper engine: one pywhispercpp model per worker slot, loaded once and warmed up.

pywhispercpp keeps decode parameters between calls, so every job sets all of them. The model
runs in a thread (whisper.cpp releases the GIL); progress, new segments and the abort check are
callbacks fired on that thread. Segments and word timings are read straight from the whisper.cpp
context after `whisper_full`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import _pywhispercpp as pw
import numpy as np
from pywhispercpp.model import Model

from jetscribe.errors import ModelError
from schemas import DecodeOptions, Segment, Task
from worker.abort import AbortSignal
from worker.decode import SAMPLE_RATE, Samples
from worker.errors import JobAbortedError, RetryableError, UnsupportedJobError
from worker.words import CENTISECONDS, TokenPiece, merge_words

log = logging.getLogger(__name__)

WARMUP_SECONDS: Final = 1.0
GREEDY_BEST_OF: Final = 5
RTF_SMOOTHING: Final = 0.3
"""Weight of the newest job in the engine's running estimate of seconds per second of audio."""


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
        self._ctx: object = self._model._ctx  # type: ignore[attr-defined]
        self._params: Any = self._model._params  # type: ignore[attr-defined]
        if self._ctx is None:
            raise ModelError(f"whisper.cpp could not load {model_path}: is it a whisper.cpp GGML model?")
        self.multilingual = bool(pw.whisper_is_multilingual(self._ctx))

    @classmethod
    async def load(cls, model_path: Path, *, name: str, threads: int, use_gpu: bool, flash_attn: bool) -> WhisperEngine:
        """Load off the event loop and run the one-second silent warm-up inference."""

        def build() -> WhisperEngine:
            engine = cls(model_path, name=name, threads=threads, use_gpu=use_gpu, flash_attn=flash_attn)
            engine.warm_up()
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

    def _configure(self, request: DecodeRequest, hooks: Hooks) -> None:
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
        params.language = request.language or ("" if self.multilingual else "en")
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
                hooks.on_segment(self._segment(index, words=False, limit=None))

        pw.assign_progress_callback(params, lambda percent, *_: hooks.on_progress(int(percent)))
        pw.assign_new_segment_callback(params, on_new_segments)
        pw.assign_abort_callback(params, lambda *_: hooks.abort.is_set())

    async def run(self, samples: Samples, request: DecodeRequest, hooks: Hooks) -> Transcription:
        """Transcribe in a thread. When `hooks.abort` fires, raise JobAbortedError at once: whisper.cpp
        polls its abort callback only between encoder passes, which can take seconds, so the job ends
        now and the model winds down behind it; `idle()` waits for that before the model is reused."""
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
        self.check(request)
        self._configure(request, hooks)
        ctx = self._ctx
        status = pw.whisper_full(ctx, self._params, samples, samples.size)
        if hooks.abort.is_set():
            raise JobAbortedError(hooks.abort.reason or "cancelled")
        if status != 0:
            raise RetryableError(f"whisper.cpp failed with status {status}")
        duration = samples.size / SAMPLE_RATE
        segments = [
            self._segment(i, words=request.options.word_timestamps, limit=duration)
            for i in range(pw.whisper_full_n_segments(ctx))
        ]
        if request.language:
            language = request.language
        else:
            language = pw.whisper_lang_str(pw.whisper_full_lang_id(ctx))
        return Transcription(segments=segments, language=language, duration_secs=round(duration, 3))

    def _segment(self, index: int, *, words: bool, limit: float | None) -> Segment:
        ctx = self._ctx
        start = pw.whisper_full_get_segment_t0(ctx, index) / CENTISECONDS
        end = pw.whisper_full_get_segment_t1(ctx, index) / CENTISECONDS
        if limit is not None:
            start, end = min(start, limit), min(end, limit)
        end = max(start, end)
        text = pw.whisper_full_get_segment_text(ctx, index).decode("utf-8", "replace").strip()
        return Segment(
            index=index,
            start=start,
            end=end,
            text=text,
            words=merge_words(self._pieces(index), start, end) if words else [],
        )

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
