"""The whisper.cpp engine: one pywhispercpp model per worker slot (`JETSCRIBE_ENGINE=whispercpp`, the default).

pywhispercpp keeps decode parameters between calls, so every job sets all of them. The model
runs in a thread (whisper.cpp releases the GIL); progress, new segments and the abort check are
callbacks fired on that thread. Each job decodes on a whisper.cpp state of its own
(`whisperlib.DecoderState`), so nothing of one job's decoding carries into the next and the same
audio with the same options gives the same transcript whatever ran before; segments and word
timings are read straight from that state.

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

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import _pywhispercpp as pw
from pywhispercpp.model import Model

from jetscribe.errors import ModelError
from jetscribe.models.files import model_quantization
from jetscribe.models.vad import vad_model
from jetscribe.stage.decode import SAMPLE_RATE, Samples
from jetscribe.stage.errors import JobAbortedError, RetryableError
from schemas import DecodeOptions, Segment, Word
from schemas.languages import UNSPACED_LANGUAGES
from worker import whisperlib
from worker.engine import DecodeRequest, Engine, EngineSpec, Hooks, without_unasked_words
from worker.errors import WhisperLibError
from worker.language import identify_language
from worker.quality import compression_ratio, loop_cut, mean
from worker.timeline import SpeechMap
from worker.words import CENTISECONDS, TokenPiece, merge_words

log = logging.getLogger(__name__)

CHUNK_S: Final = 300.0
"""Seconds of audio per whisper.cpp call (see the module docstring)."""
CHUNK_EDGE_S: Final = 5.0
"""A segment ending within this many seconds of a chunk's end is left to the next chunk."""
GREEDY_BEST_OF: Final = 5


def _ignore(*_: object) -> None:
    return None


def _never(*_: object) -> bool:
    return False


def _always(*_: object) -> bool:
    return True


class WhisperCppEngine(Engine):
    """One loaded GGML model; not thread-safe, so each worker slot has its own."""

    kind: Literal["whispercpp"] = "whispercpp"

    def __init__(self, spec: EngineSpec) -> None:
        self._spec = spec
        model_path = spec.path
        self._threads = spec.threads
        try:
            whisperlib.route_logs()
        except WhisperLibError as exc:
            raise ModelError(f"cannot reach libwhisper beside pywhispercpp: {exc}") from exc
        try:
            self._model = Model(
                str(model_path),
                redirect_whispercpp_logs_to=None,
                # Flash attention speeds whisper.cpp up on CPUs too (53.0 s against 63.8 s for 5 min of speech with
                # base on 2 cores, issue 20's measurement), so it follows the setting on either backend.
                context_params={"use_gpu": spec.use_gpu, "flash_attn": spec.flash_attn},
            )
        except Exception as exc:
            raise ModelError(f"cannot load Whisper model {model_path}: {exc}") from exc
        # pywhispercpp's Model keeps the whisper.cpp context and the decode parameters in attributes it does
        # not declare; the engine drives whisper_full on them directly.
        self._ctx: object | None = self._model._ctx  # type: ignore[attr-defined]
        self._params: Any = self._model._params  # type: ignore[attr-defined]
        if self._ctx is None:
            raise ModelError(f"whisper.cpp could not load {model_path}: is it a whisper.cpp GGML model?")
        super().__init__(
            name=spec.model,
            multilingual=bool(pw.whisper_is_multilingual(self._ctx)),
            compute_type=None,
            quantization=model_quantization(model_path),
        )
        self._vad_model = vad_model()
        try:
            self._pointer = whisperlib.context_pointer(self._ctx)
        except WhisperLibError as exc:
            raise ModelError(f"cannot reach libwhisper beside pywhispercpp: {exc}") from exc

    def sibling(self) -> WhisperCppEngine:
        # whisper.cpp contexts are not shared between threads: each slot loads its own copy.
        return WhisperCppEngine(self._spec)

    def close(self) -> None:
        if self._ctx is None:
            return
        # Callbacks that refer to nothing replace the ones that refer back to this engine.
        pw.assign_progress_callback(self._params, _ignore)
        pw.assign_new_segment_callback(self._params, _ignore)
        pw.assign_abort_callback(self._params, _never)
        pw.assign_encoder_begin_callback(self._params, _always)
        pw.assign_logits_filter_callback(self._params, _ignore)
        pw.whisper_free(self._ctx)
        self._ctx = None
        self._model._ctx = None  # type: ignore[attr-defined]

    def _configure(
        self, request: DecodeRequest, hooks: Hooks, chunk: _Chunk, attempts: _Attempts, state: whisperlib.DecoderState
    ) -> None:
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
        params.temperature_inc = options.temperature_increment
        params.entropy_thold = options.entropy_threshold
        params.logprob_thold = options.logprob_threshold
        params.no_speech_thold = options.no_speech_threshold
        params.suppress_nst = options.suppress_non_speech
        params.suppress_blank = True
        params.n_threads = self._threads
        params.initial_prompt = options.initial_prompt or ""
        # Token times also place the cut of a repetition loop, so they are computed even without word timestamps.
        params.token_timestamps = True
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

        def on_new_segments(_ctx: object, n_new: int, *_: object) -> None:
            total = state.n_segments()
            for index in range(total - n_new, total):
                attempts.temperatures[index] = attempts.temperature
                segment = self._segment(state, index, request, chunk, attempts)
                # Only segments this chunk keeps go out live; the rest come again from the next chunk.
                if chunk.edge_s is not None and segment.end - chunk.offset_s >= chunk.edge_s:
                    return
                hooks.on_segment(without_unasked_words(chunk.speech.segment(segment), request))

        def on_encoder_begin(*_: object) -> bool:
            # Called before each 30 s window on every backend: returning False ends whisper_full there.
            attempts.window_began()
            return not hooks.abort.is_set()

        def on_progress(percent: int, *_: object) -> None:
            hooks.on_progress(int(100 * (chunk.offset_s + chunk.duration_s * percent / 100) / chunk.total_s))

        pw.assign_progress_callback(params, on_progress)
        pw.assign_new_segment_callback(params, on_new_segments)
        pw.assign_abort_callback(params, lambda *_: hooks.abort.is_set())
        pw.assign_encoder_begin_callback(params, on_encoder_begin)
        pw.assign_logits_filter_callback(params, lambda _ctx, n_tokens, *_: attempts.token_step(n_tokens))

    def _ensure_open(self) -> None:
        if self._ctx is None:
            raise ModelError(f"the engine for model {self.name!r} is closed")

    def _decode_speech(
        self, joined: Samples, speech: SpeechMap, request: DecodeRequest, language: str, hooks: Hooks
    ) -> list[Segment]:
        with whisperlib.DecoderState(self._pointer) as state:
            segments = self._transcribe_speech(joined, request, hooks, speech, language, state)
        return [speech.segment(segment) for segment in segments]

    def _transcribe_speech(
        self,
        joined: Samples,
        request: DecodeRequest,
        hooks: Hooks,
        speech: SpeechMap,
        language: str,
        state: whisperlib.DecoderState,
    ) -> list[Segment]:
        """Segments of the speech Whisper hears, chunk by chunk (`CHUNK_S`), on that audio's timeline."""
        segments: list[Segment] = []
        start = 0
        while True:
            end = min(joined.size, start + int(CHUNK_S * SAMPLE_RATE))
            chunk = _Chunk(
                offset_s=start / SAMPLE_RATE,
                duration_s=(end - start) / SAMPLE_RATE,
                total_s=joined.size / SAMPLE_RATE,
                first_index=len(segments),
                edge_s=None if end == joined.size else (end - start) / SAMPLE_RATE - CHUNK_EDGE_S,
                language=language,
                speech=speech,
            )
            found = self._transcribe_chunk(joined[start:end], request, hooks, chunk, state)
            kept = found if chunk.edge_s is None else _before_edge(found, chunk)
            segments.extend(kept)
            if end == joined.size:
                break
            start += _advance(found, kept, chunk)
        return segments

    def _find_speech(self, samples: Samples, options: DecodeOptions) -> SpeechMap:
        """Silero VAD v6.2, whisper.cpp's GGML port."""
        settings = whisperlib.VadSettings(
            threshold=options.vad_threshold,
            min_speech_ms=options.vad_min_speech_ms,
            min_silence_ms=options.vad_min_silence_ms,
            speech_pad_ms=options.vad_speech_pad_ms,
        )
        regions = whisperlib.speech_regions(self._vad_model, samples, settings, SAMPLE_RATE)
        return SpeechMap.of(regions, samples.size / SAMPLE_RATE)

    def _detect_language(self, speech: Samples, allowed: Sequence[str] | None) -> tuple[str, float]:
        return identify_language(self._ctx, speech, threads=self._threads, allowed=allowed)

    def _transcribe_chunk(
        self, samples: Samples, request: DecodeRequest, hooks: Hooks, chunk: _Chunk, state: whisperlib.DecoderState
    ) -> list[Segment]:
        """Segments of one chunk, on the timeline of the audio Whisper hears (the joined speech with VAD)."""
        attempts = _Attempts(request.options)
        self._configure(request, hooks, chunk, attempts, state)
        try:
            status = state.full(self._params, samples)
        except WhisperLibError as exc:
            raise ModelError(f"cannot drive libwhisper beside pywhispercpp: {exc}") from exc
        if hooks.abort.is_set():
            raise JobAbortedError(hooks.abort.reason or "cancelled")
        if status != 0:
            raise RetryableError(f"whisper.cpp failed with status {status}")
        return [self._segment(state, i, request, chunk, attempts) for i in range(state.n_segments())]

    def _segment(
        self, state: whisperlib.DecoderState, index: int, request: DecodeRequest, chunk: _Chunk, attempts: _Attempts
    ) -> Segment:
        """Segment `index` of the last call on `state` with its detail and words, shifted by the chunk's offset.

        Words are always found (they place the segment on the original timeline, `SpeechMap.segment`); a job
        that did not ask for them has them removed at the end.

        A segment whose text compresses past `compression_ratio_threshold` (a loop whisper.cpp's fallback did not
        escape) is cut after the first copy of its repeated run; its end moves to the last token kept.
        """
        limit = chunk.duration_s
        t0, t1 = state.segment_times(index)
        start = min(t0 / CENTISECONDS, limit)
        end = max(start, min(t1 / CENTISECONDS, limit))
        text = state.segment_text(index).decode("utf-8", "replace").strip()
        tokens = self._tokens(state, index)
        ratio = compression_ratio(text)
        if ratio > request.options.compression_ratio_threshold:
            text_positions = [i for i, token in enumerate(tokens) if token.piece is not None]
            cut = loop_cut([tokens[i].id for i in text_positions])
            if cut is not None:
                tokens = tokens[: text_positions[cut - 1] + 1]
                pieces = [t.piece for t in tokens if t.piece is not None]
                text = b"".join(p.text for p in pieces).decode("utf-8", "replace").strip()
                ratio = compression_ratio(text)
                end = max(start, min(end, pieces[-1].t1 / CENTISECONDS))
        pieces = [t.piece for t in tokens if t.piece is not None]
        spaced = request.task == "translate" or chunk.language not in UNSPACED_LANGUAGES
        found = merge_words(pieces, start, end, spaced=spaced)
        offset = chunk.offset_s
        return Segment(
            index=chunk.first_index + index,
            start=round(start + offset, 3),
            end=round(end + offset, 3),
            text=text,
            words=[Word(start=round(w.start + offset, 3), end=round(w.end + offset, 3), word=w.word,
                        probability=w.probability) for w in found],
            avg_logprob=_rounded(mean([t.logprob for t in tokens])),
            no_speech_prob=_rounded(state.no_speech_prob(index)),
            compression_ratio=_rounded(ratio),
            temperature=attempts.temperatures.get(index, attempts.temperature),
            tokens=[t.id for t in tokens],
        )  # fmt: skip

    def _tokens(self, state: whisperlib.DecoderState, index: int) -> list[_Token]:
        """The segment's text and time-stamp tokens (special tokens left out), in order."""
        ctx = self._ctx
        eot = pw.whisper_token_eot(ctx)
        beg = pw.whisper_token_beg(ctx)
        found = []
        for data in state.tokens(index):
            if data.id < eot:
                piece = TokenPiece(pw.whisper_token_to_bytes(ctx, data.id), data.t0, data.t1, float(data.p))
                found.append(_Token(data.id, float(data.plog), piece))
            elif data.id >= beg:
                found.append(_Token(data.id, float(data.plog), None))
        return found


@dataclass(frozen=True, slots=True)
class _Token:
    id: int
    logprob: float
    piece: TokenPiece | None
    """The text of a text token; None for a time-stamp token."""


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class _Attempts:
    """whisper.cpp's temperature fallback, observed: which temperature each window's final decoding used.

    whisper.cpp decodes a 30 s window at `temperature`, and again at `temperature + k × temperature_increment`
    (up to 1.0) while the result fails its checks, but does not report which attempt it kept. Every attempt
    restarts the decoders from an empty sequence, and the logits-filter callback is called before each token with
    the length of the sequence so far: a length of 0 after a longer one is the next attempt. The encoder-begin
    callback starts each window. The schedule is whisper.cpp's own (`whisper_full_with_state`).
    """

    def __init__(self, options: DecodeOptions) -> None:
        schedule = [options.temperature]
        if options.temperature_increment > 0:
            t = options.temperature + options.temperature_increment
            while t < 1.0 + 1e-6:
                schedule.append(t)
                t += options.temperature_increment
        self._schedule = [round(t, 4) for t in schedule]
        self._attempt = 0
        self._last_length: int | None = None
        self.temperatures: dict[int, float] = {}
        """Temperature of each segment (by its index in the whisper_full call), recorded as it is produced."""

    def window_began(self) -> None:
        self._attempt = 0
        self._last_length = None

    def token_step(self, length: int) -> None:
        if length == 0 and self._last_length:
            self._attempt += 1
        self._last_length = length

    @property
    def temperature(self) -> float:
        return self._schedule[min(self._attempt, len(self._schedule) - 1)]


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
    language: str
    """The language to use: requested, or identified on the speech."""
    speech: SpeechMap
    """Where the audio Whisper hears lies in the original audio."""


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
