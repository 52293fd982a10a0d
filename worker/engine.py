"""The engine contract: what a worker slot asks of Whisper, whichever engine runs it.

```
                    Engine (this module: the contract, and the slot-facing async half)
                   /                                        \\
  WhisperCppEngine (worker.whispercpp)          CTranslate2Engine (worker.ctranslate2_engine)
  whisper.cpp through pywhispercpp:              CTranslate2 through faster-whisper: int8/float16/…
  GGML weights, CPU or a CUDA build              compute, batched decoding of a job's 30 s chunks
```

A worker picks the engine per model (`JETSCRIBE_ENGINE`, `JETSCRIBE_MODEL_ENGINES`); the rest of the worker sees
only `Engine`: `transcribe` a job's samples with its `DecodeRequest`, firing `Hooks` (progress, new segments,
abort) on the engine's thread, into the same `Segment`/`Word` output. Both engines hear only the speech voice
activity detection finds (Silero: whisper.cpp's GGML port, or the ONNX model inside the faster-whisper wheel),
joined, and map every time back onto the audio's own timeline (`worker.timeline`); both identify the language on
the first 30 s of that speech, among the job's allowed languages.

`EngineSpec` is the one way an engine is built: the worker's slots and the benchmarks' plain loops build theirs
from `engine_spec(settings, model)` with `build_engine` / `load_engine`, so a baseline runs exactly the service's
engine.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import msgspec
import numpy as np

from jetscribe.config import EngineKind, Settings
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import SAMPLE_RATE, Samples
from jetscribe.stage.errors import JobAbortedError
from schemas import DecodeOptions, Segment, Task
from worker.errors import UnsupportedJobError
from worker.timeline import SpeechMap

WARMUP_SECONDS: Final = 1.0
RTF_SMOOTHING: Final = 0.3
"""Weight of the newest job in the engine's running estimate of seconds per second of audio."""


@dataclass(frozen=True, slots=True)
class DecodeRequest:
    """What one job asks of the engine."""

    language: str | None
    task: Task
    options: DecodeOptions
    vad: bool = True
    """Transcribe only the speech voice activity detection finds (the job's `vad`, else the worker's setting)."""


@dataclass(frozen=True, slots=True)
class Transcription:
    segments: list[Segment]
    language: str | None
    """The requested language, or the one Whisper detected on the speech; None when neither (no speech found)."""
    duration_secs: float
    language_probability: float | None = None
    """Whisper's probability of the detected language; None when it was requested or there was no speech."""
    speech_secs: float | None = None
    """Seconds of audio Whisper heard: the speech VAD found (the whole audio without VAD)."""


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callbacks fired on the engine's thread during a transcription."""

    on_progress: Callable[[int], None]
    """Percent of the job's audio transcribed so far, 0–100."""
    on_segment: Callable[[Segment], None]
    """Each segment as it is found, on the audio's timeline (index not final: segments without text are dropped)."""
    abort: AbortSignal


def without_unasked_words(segment: Segment, request: DecodeRequest) -> Segment:
    """`segment` without its words when the job did not ask for them (engines find them to place segments)."""
    return segment if request.options.word_timestamps else msgspec.structs.replace(segment, words=[])


def ignore_hooks() -> Hooks:
    """Hooks that report nowhere and never abort (warm-up, benchmarks)."""
    return Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """Everything that builds one engine for one model (`engine_spec` fills it from the settings)."""

    kind: EngineKind
    model: str
    """The model's name, as jobs name it."""
    path: Path
    """Its weights: a GGML file (whisper.cpp) or a CTranslate2 model directory (ctranslate2)."""
    threads: int
    use_gpu: bool
    flash_attn: bool
    compute_type: str = "auto"
    """CTranslate2's compute type (`int8`, `int8_float16`, `float16`, `float32`, or `auto`); whisper.cpp has none."""
    batch_size: int = 1
    """30 s chunks decoded in one batched forward pass, of one job or of the slots' jobs together (CTranslate2
    only; 1 decodes each job's in turn)."""
    slots: int = 1
    """The worker's slots for this model: CTranslate2 decodes that many jobs in parallel on one shared model when
    it does not batch them."""


class Engine(abc.ABC):
    """One loaded model for one worker slot (not thread-safe: each slot has its own).

    This class holds what both engines do the same way: the transcription's course (`transcribe`: VAD, the speech
    joined, the language identified on it, the segments indexed) and the slot's asynchronous half (`run` in a
    thread with abort, `lock`, `nearly_free`, `idle`). Each engine supplies its own steps: `_ensure_open`,
    `_find_speech`, `_detect_language`, `_decode_speech`, and `sibling`, `close`.
    """

    kind: EngineKind
    """Which engine this is: `whispercpp` or `ctranslate2`."""

    def __init__(self, *, name: str, multilingual: bool, compute_type: str | None, quantization: str) -> None:
        self.name = name
        """The model's name, as jobs name it."""
        self.multilingual = multilingual
        """False for English-only models."""
        self.compute_type = compute_type
        """The type the engine computes in (CTranslate2's `int8`, `float16`, …); None for whisper.cpp."""
        self.quantization = quantization
        """How the weights are held: the GGML file's type (`f16`, `q8_0`, …), or CTranslate2's weight type."""
        self.batch_size = 1
        self.lock = asyncio.Lock()
        """Held by the job using the model; the next job waits on it with its audio already decoded."""
        self._work: asyncio.Future[Transcription] | None = None
        self._seconds_per_audio_second: float | None = None
        self._expected_end: float | None = None
        self._finished = asyncio.Event()

    # The blocking half ------------------------------------------------------------------------------------

    def transcribe(self, samples: Samples, request: DecodeRequest, hooks: Hooks) -> Transcription:
        """Run Whisper on `samples` (16 kHz mono float32; blocking: call it in a thread).

        With VAD, Whisper hears only the speech (joined, `worker.timeline`); audio without speech ends here, with no
        segments and language None (unless requested). The language, when not given, is identified on the first
        30 s of that speech. Raises JobAbortedError when `hooks.abort` fires, UnsupportedJobError for a request the
        model cannot serve, ModelError when the engine is closed, RetryableError for a fault another attempt may
        not hit."""
        self._ensure_open()
        self.check(request)
        duration = round(samples.size / SAMPLE_RATE, 3)
        speech = self._speech_map(samples, request)
        if not speech.regions:
            return Transcription(segments=[], language=request.language, duration_secs=duration, speech_secs=0.0)
        joined = speech.join(samples)
        language, probability = self._language(joined, request)
        if hooks.abort.is_set():
            raise JobAbortedError(hooks.abort.reason or "cancelled")
        segments = self._decode_speech(joined, speech, request, language, hooks)
        final = [
            msgspec.structs.replace(without_unasked_words(segment, request), index=index)
            for index, segment in enumerate(s for s in segments if s.text)
        ]
        return Transcription(
            segments=final,
            language=language,
            duration_secs=duration,
            language_probability=probability,
            speech_secs=round(speech.speech_s, 3),
        )

    def language_of(self, samples: Samples, request: DecodeRequest) -> tuple[str | None, float | None]:
        """The `language` and `language_probability` a transcription of `samples` would report, without
        transcribing: the speech is found and the language identified on it exactly as `transcribe` does
        (blocking: VAD and one encoder pass)."""
        self._ensure_open()
        self.check(request)
        speech = self._speech_map(samples, request)
        if not speech.regions:
            return request.language, None
        return self._language(speech.join(samples), request)

    def _speech_map(self, samples: Samples, request: DecodeRequest) -> SpeechMap:
        """The speech Whisper hears: what VAD finds, or the whole audio when the request has VAD off."""
        if not request.vad:
            return SpeechMap.whole(samples.size / SAMPLE_RATE)
        return self._find_speech(samples, request.options)

    def _language(self, speech: Samples, request: DecodeRequest) -> tuple[str, float | None]:
        """The job's language and, when detected here, Whisper's probability of it."""
        if request.language is not None:
            return request.language, None
        if not self.multilingual:
            return "en", None
        return self._detect_language(speech, request.options.languages)

    @abc.abstractmethod
    def _ensure_open(self) -> None:
        """Raise ModelError when the engine is closed."""

    @abc.abstractmethod
    def _find_speech(self, samples: Samples, options: DecodeOptions) -> SpeechMap:
        """Where `samples` hold speech, by the engine's Silero VAD with the job's VAD options, padded and merged."""

    @abc.abstractmethod
    def _detect_language(self, speech: Samples, allowed: Sequence[str] | None) -> tuple[str, float]:
        """The most probable language of the first 30 s of `speech` (among `allowed`, when given) and Whisper's
        probability of it, over all languages (one encoder pass)."""

    @abc.abstractmethod
    def _decode_speech(
        self, joined: Samples, speech: SpeechMap, request: DecodeRequest, language: str, hooks: Hooks
    ) -> list[Segment]:
        """The segments of the joined speech in `language`, in order, on the audio's own timeline (`speech`), each
        reported through `hooks` as it is found. Raises JobAbortedError when `hooks.abort` fires."""

    @abc.abstractmethod
    def sibling(self) -> Engine:
        """An engine for another slot of the same worker, not warmed up (blocking): a copy of the model, or a view
        that shares it where the engine is thread-safe (CTranslate2, whose slots then batch together)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Free the model's memory; no transcription may be running (see `aclose`). Idempotent."""

    def warm_up(self) -> None:
        """Pay one-off costs (buffers, GPU kernels) before the first real job does: one second of silence."""
        silence = np.zeros(int(SAMPLE_RATE * WARMUP_SECONDS), dtype=np.float32)
        # Without VAD: voice activity detection would find no speech in silence, and Whisper would not run.
        request = DecodeRequest(language="en", task="transcribe", options=DecodeOptions(beam_size=1), vad=False)
        self.transcribe(silence, request, ignore_hooks())

    def check(self, request: DecodeRequest) -> None:
        """Raise UnsupportedJobError if this model cannot serve `request`."""
        if not self.multilingual and request.language not in (None, "en"):
            raise UnsupportedJobError(
                f"model {self.name!r} is English-only: it cannot transcribe language {request.language!r}; "
                "run workers with a multilingual model (e.g. WHISPER_MODEL=base)"
            )
        allowed = request.options.languages
        if not self.multilingual and allowed and "en" not in allowed:
            raise UnsupportedJobError(
                f"model {self.name!r} is English-only: it cannot transcribe any of the allowed languages "
                f"{', '.join(allowed)}; run workers with a multilingual model (e.g. WHISPER_MODEL=base)"
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # The asynchronous half --------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Wait for an aborted transcription to wind down, then `close()` off the event loop."""
        await self.idle()
        await asyncio.to_thread(self.close)

    async def run(self, samples: Samples, request: DecodeRequest, hooks: Hooks) -> Transcription:
        """Transcribe in a thread. When `hooks.abort` fires, raise JobAbortedError at once: the engine stops at
        its next check (the next 30 s window or batch), which can take seconds, so the job ends now and the model
        winds down behind it; `idle()` waits for that before the model is reused."""
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


def engine_spec(settings: Settings, model: str) -> EngineSpec:
    """How a worker with `settings` builds its engine for `model`: the engine the settings choose for it, and its
    weights resolved (imported, assembled or quantized on first use). Blocking. Raises ModelError."""
    kind = settings.engine_of(model)
    if kind == "ctranslate2":
        from jetscribe.models.ct2store import resolve_ct2_model
        from worker.ctranslate2_engine import device_of, resolve_compute_type

        path = resolve_ct2_model(model, settings.model_dir, settings.whisper_model_path)
        # Checked here too, so `jetscribe serve` refuses to start rather than its worker failing in a loop.
        resolve_compute_type(settings.compute_type, device_of(settings.use_gpu))
    else:
        from jetscribe.models.store import resolve_model

        path = resolve_model(model, settings.model_dir, settings.whisper_model_path)
    return EngineSpec(
        kind=kind,
        model=model,
        path=path,
        threads=settings.threads,
        use_gpu=settings.use_gpu,
        flash_attn=settings.flash_attn,
        compute_type=settings.compute_type,
        batch_size=settings.batch_size,
        slots=settings.worker_slots,
    )


def build_engine(spec: EngineSpec) -> Engine:
    """The engine `spec` describes, loaded but not warmed up (blocking). Only the chosen engine's library is
    imported: a whisper.cpp worker needs no CTranslate2, and the other way round. Raises ModelError."""
    if spec.kind == "ctranslate2":
        from worker.ctranslate2_engine import CTranslate2Engine

        return CTranslate2Engine(spec)
    from worker.whispercpp import WhisperCppEngine

    return WhisperCppEngine(spec)


async def load_engine(spec: EngineSpec) -> Engine:
    """`build_engine` and the warm-up inference, off the event loop."""
    return await asyncio.to_thread(_warmed, lambda: build_engine(spec))


async def load_engines(spec: EngineSpec, slots: int) -> list[Engine]:
    """One warmed engine per slot: the first built from `spec`, the others its siblings. On failure the engines
    already loaded are closed."""
    engines = [await load_engine(spec)]
    try:
        while len(engines) < slots:
            first = engines[0]
            engines.append(await asyncio.to_thread(_warmed, first.sibling))
    except BaseException:
        for engine in engines:
            await engine.aclose()
        raise
    return engines


def _warmed(build: Callable[[], Engine]) -> Engine:
    engine = build()
    try:
        engine.warm_up()
    except BaseException:
        engine.close()
        raise
    return engine
