"""The few libwhisper functions pywhispercpp 1.5.1 does not bind, called through ctypes on the very library it loaded.

- A whisper.cpp state of its own for each job (`DecoderState`: `whisper_init_state`, `whisper_full_with_state` and
  the `*_from_state` readers). `whisper_full` on the context's own state carries decoder state from one call to the
  next: whisper.cpp re-seeds the random generators of decoders 1… at each call but the first decoder's only when a
  state is created, so once a window falls back to sampling (temperature > 0) the same audio decodes differently
  depending on the jobs the model ran before (measured: tiny.en, beam 5, one clip three times with another clip
  between: "Hello World! This is a short test on the Trunk Ripch & Service." then "The low world is in…").
  It also gives each segment's no-speech probability (`whisper_full_get_segment_no_speech_prob_from_state`), which
  the binding lacks.
- Silero VAD (`whisper_vad_*`): the binding's own VAD functions are broken in 1.5.1 (`whisper_vad_init_from_file_
  with_params` raises "Unregistered type: whisper_vad_context_wrapper"), the C functions work.
- `whisper_log_set`: whisper.cpp and ggml write every log line to stderr by default (about 30 lines per VAD pass,
  more for each model load); `route_logs` sends them to Python logging instead, warnings and errors as such and
  the rest at DEBUG.

The library is the one `_pywhispercpp` is linked against (found in this process's memory map), so the context
pointer the binding holds is valid here. That pointer is read from the binding's wrapper object (a pybind11
instance holding a pointer to `struct whisper_context_wrapper { whisper_context * ptr; }`) and checked against the
binding before use: `context_pointer` raises WhisperLibError if the layout is not the expected one. The decode
parameters are the binding's own `whisper_full_params` (its wrapper class derives from the C struct, so the struct
is the object's first bytes); `whisper_full_with_state` takes them by value, copied from there, and their size is
measured on the library itself (`_full_params_size`) rather than assumed. Other struct layouts follow whisper.h of
libwhisper 1.8.5.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import _pywhispercpp as pw
import numpy as np
import numpy.typing as npt

from worker.errors import WhisperLibError

log = logging.getLogger(__name__)

_MAPS: Final = Path("/proc/self/maps")
_CENTISECONDS: Final = 100.0
_PYBIND_VALUE_OFFSET: Final = 2 * ctypes.sizeof(ctypes.c_void_p)
"""Where a pybind11 instance keeps its value pointer: right after the object header (refcount, type)."""


class VadContextParams(ctypes.Structure):
    """`struct whisper_vad_context_params`."""

    _fields_ = (("n_threads", ctypes.c_int), ("use_gpu", ctypes.c_bool), ("gpu_device", ctypes.c_int))


class TokenData(ctypes.Structure):
    """`struct whisper_token_data`: times in centiseconds, probabilities as whisper.cpp computed them."""

    _fields_ = (
        ("id", ctypes.c_int32),
        ("tid", ctypes.c_int32),
        ("p", ctypes.c_float),
        ("plog", ctypes.c_float),
        ("pt", ctypes.c_float),
        ("ptsum", ctypes.c_float),
        ("t0", ctypes.c_int64),
        ("t1", ctypes.c_int64),
        ("t_dtw", ctypes.c_int64),
        ("vlen", ctypes.c_float),
    )


class VadParams(ctypes.Structure):
    """`struct whisper_vad_params`."""

    _fields_ = (
        ("threshold", ctypes.c_float),
        ("min_speech_duration_ms", ctypes.c_int),
        ("min_silence_duration_ms", ctypes.c_int),
        ("max_speech_duration_s", ctypes.c_float),
        ("speech_pad_ms", ctypes.c_int),
        ("samples_overlap", ctypes.c_float),
    )


def _library_path() -> str:
    """The libwhisper `_pywhispercpp` loaded: from the memory map, else beside the binding (its wheel's `.libs`)."""
    try:
        for line in _MAPS.read_text().splitlines():
            path = line.split()[-1] if line.split() else ""
            if "libwhisper" in os.path.basename(path) and os.path.isfile(path):
                return path
    except OSError:
        pass
    binding = Path(pw.__file__).parent
    found = sorted(glob.glob(str(binding / "pywhispercpp.libs" / "libwhisper*.so*"))) or sorted(
        glob.glob(str(binding / "libwhisper*.so*"))
    )
    if not found:
        raise WhisperLibError("cannot find the libwhisper shared library pywhispercpp uses")
    return found[0]


_LogCallback = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
"""`ggml_log_callback`: (level, text, user data)."""
_LEVELS: Final = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
"""`enum ggml_log_level` (ggml.h) → Python's: DEBUG 1, INFO 2, WARN 3, ERROR 4 (NONE 0 and CONT 5 handled apart).
whisper.cpp's INFO lines are progress chatter (model layout, VAD timings), hence DEBUG here."""
_CONTINUED: Final = 5
"""GGML_LOG_LEVEL_CONT: more text of the previous line, at its level."""


class _LogRouter:
    """The callback handed to whisper.cpp: one log record per line, at the level whisper.cpp gave it.

    whisper.cpp calls it from whichever thread logs (the whisper thread, or the event loop's when a model loads);
    ctypes takes the GIL for it."""

    def __init__(self) -> None:
        self._level = logging.DEBUG
        self.callback = _LogCallback(self._log)

    def _log(self, level: int, text: bytes | None, _user_data: object) -> None:
        if level != _CONTINUED:
            self._level = _LEVELS.get(level, logging.DEBUG)
        if text and log.isEnabledFor(self._level):
            line = text.decode("utf-8", "replace").rstrip()
            if line:
                log.log(self._level, "whisper.cpp: %s", line)


_ROUTER: Final = _LogRouter()


@cache
def route_logs() -> None:
    """Send whisper.cpp's and ggml's log lines to Python logging (`worker.whisperlib`), not stderr; once per
    process (the callback is global in libwhisper and lives as long as the process)."""
    library().whisper_log_set(_ROUTER.callback, None)


@cache
def library() -> ctypes.CDLL:
    """libwhisper with the signatures used here declared (loaded once per process)."""
    lib = ctypes.CDLL(_library_path())
    void_p, c_int, c_float = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    signatures: dict[str, tuple[list[object], object]] = {
        "whisper_n_vocab": ([void_p], c_int),
        "whisper_full_n_segments": ([void_p], c_int),
        "whisper_init_state": ([void_p], void_p),
        "whisper_free_state": ([void_p], None),
        "whisper_full_default_params_by_ref": ([c_int], void_p),
        "whisper_free_params": ([void_p], None),
        "whisper_full_n_segments_from_state": ([void_p], c_int),
        "whisper_full_get_segment_t0_from_state": ([void_p, c_int], ctypes.c_int64),
        "whisper_full_get_segment_t1_from_state": ([void_p, c_int], ctypes.c_int64),
        "whisper_full_get_segment_text_from_state": ([void_p, c_int], ctypes.c_char_p),
        "whisper_full_get_segment_no_speech_prob_from_state": ([void_p, c_int], c_float),
        "whisper_full_n_tokens_from_state": ([void_p, c_int], c_int),
        "whisper_full_get_token_data_from_state": ([void_p, c_int, c_int], TokenData),
        "whisper_vad_default_context_params": ([], VadContextParams),
        "whisper_vad_default_params": ([], VadParams),
        "whisper_vad_init_from_file_with_params": ([ctypes.c_char_p, VadContextParams], void_p),
        "whisper_vad_free": ([void_p], None),
        "whisper_vad_segments_from_samples": ([void_p, VadParams, ctypes.POINTER(c_float), c_int], void_p),
        "whisper_vad_segments_n_segments": ([void_p], c_int),
        "whisper_vad_segments_get_segment_t0": ([void_p, c_int], c_float),
        "whisper_vad_segments_get_segment_t1": ([void_p, c_int], c_float),
        "whisper_vad_free_segments": ([void_p], None),
        "whisper_log_set": ([_LogCallback, void_p], None),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    return lib


def context_pointer(ctx: object) -> int:
    """The `whisper_context *` inside the binding's context object; WhisperLibError when it cannot be read safely."""
    holder = _value_pointer(ctx)
    pointer = ctypes.c_void_p.from_address(holder).value if holder else None
    lib = library()
    if not pointer or lib.whisper_n_vocab(pointer) != pw.whisper_n_vocab(ctx):
        raise WhisperLibError("pywhispercpp's context object does not have the layout this worker expects")
    return pointer


def _value_pointer(wrapper: object) -> int | None:
    """The C++ object a pybind11 instance holds (its value pointer), or None."""
    return ctypes.c_void_p.from_address(id(wrapper) + _PYBIND_VALUE_OFFSET).value


@cache
def _full_params_size() -> int:
    """sizeof(struct whisper_full_params) in this libwhisper, measured: `whisper_vad_params` is its last member
    (whisper.h since 1.7.6), so the struct ends one `VadParams` after where the VAD defaults sit in a default
    parameter block. Raises WhisperLibError when the defaults are not found where a struct of this shape keeps them.
    """
    lib = library()
    usable_size = ctypes.CDLL(None).malloc_usable_size
    usable_size.argtypes, usable_size.restype = [ctypes.c_void_p], ctypes.c_size_t
    block = lib.whisper_full_default_params_by_ref(0)
    try:
        defaults = lib.whisper_vad_default_params()
        vad_defaults = bytes(defaults)[: ctypes.sizeof(ctypes.c_float) + 2 * ctypes.sizeof(ctypes.c_int)]
        # The block comes from `new`: everything up to its usable size is readable, and the struct lies within.
        raw = ctypes.string_at(block, usable_size(block))
    finally:
        lib.whisper_free_params(block)
    at = raw.find(vad_defaults)
    if at < 0 or at % ctypes.alignment(VadParams):
        raise WhisperLibError("libwhisper's whisper_full_params do not have the layout this worker expects")
    return at + ctypes.sizeof(VadParams)


@cache
def _full_params_type() -> type[ctypes.Structure]:
    """`struct whisper_full_params` as an opaque block of its measured size, for passing by value (ctypes passes
    arrays by reference, structures by value)."""
    size = _full_params_size()
    words, rest = divmod(size, ctypes.sizeof(ctypes.c_uint64))
    if rest:
        raise WhisperLibError("libwhisper's whisper_full_params do not have the layout this worker expects")
    return type("FullParams", (ctypes.Structure,), {"_fields_": [("raw", ctypes.c_uint64 * words)]})


@cache
def _full_with_state() -> Any:
    """`whisper_full_with_state` with its signature declared (its by-value parameter is sized at run time)."""
    function = library().whisper_full_with_state
    function.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        _full_params_type(),
        ctypes.POINTER(ctypes.c_float),
        ctypes.c_int,
    ]
    function.restype = ctypes.c_int
    return function


def _params_value(params: object, expected: tuple[int, int, int]) -> ctypes.Structure:
    """A by-value copy of the binding's decode parameters, checked on their first fields (strategy, n_threads,
    n_max_text_ctx) against what the binding reports; WhisperLibError otherwise."""
    pointer = _value_pointer(params)
    if not pointer:
        raise WhisperLibError("pywhispercpp's decode parameters do not have the layout this worker expects")
    head = (ctypes.c_int * 3).from_address(pointer)
    if tuple(head) != expected:
        raise WhisperLibError("pywhispercpp's decode parameters do not have the layout this worker expects")
    kind = _full_params_type()
    return kind.from_buffer_copy(ctypes.string_at(pointer, ctypes.sizeof(kind)))


class DecoderState:
    """A whisper.cpp state of its own (`whisper_init_state`): the buffers, decoders and results of one job's
    `whisper_full_with_state` calls, freed on `close()` (or leaving the `with` block). Blocking, like the engine.

    Costs one more set of the model's working buffers while it lives (KV caches and compute buffers; the context's
    own state stays, for language identification). Measured on this machine's CPU backend: 15 ms to create and
    23 MB resident for tiny.en, 29 ms and 36 MB for base — per job, not per window.
    """

    def __init__(self, context: int) -> None:
        self._lib = library()
        self._state: int | None = self._lib.whisper_init_state(context)
        if not self._state:
            raise WhisperLibError("whisper.cpp could not allocate a decoder state (out of memory?)")
        self._context = context

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._state is not None:
            self._lib.whisper_free_state(self._state)
            self._state = None

    @property
    def _pointer(self) -> int:
        if self._state is None:
            raise WhisperLibError("the decoder state is closed")
        return self._state

    def full(self, params: Any, samples: npt.NDArray[np.float32]) -> int:
        """`whisper_full_with_state` on `samples` with the binding's `params` (callbacks included); its status,
        0 on success. Releases the GIL while whisper.cpp runs (ctypes does for every foreign call)."""
        value = _params_value(params, (int(params.strategy), params.n_threads, params.n_max_text_ctx))
        data = np.ascontiguousarray(samples, dtype=np.float32)
        floats = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        return int(_full_with_state()(self._context, self._pointer, value, floats, data.size))

    def n_segments(self) -> int:
        return int(self._lib.whisper_full_n_segments_from_state(self._pointer))

    def segment_times(self, segment: int) -> tuple[int, int]:
        """Start and end of segment `segment` of the last call, in centiseconds from the start of its audio."""
        pointer = self._pointer
        return (
            int(self._lib.whisper_full_get_segment_t0_from_state(pointer, segment)),
            int(self._lib.whisper_full_get_segment_t1_from_state(pointer, segment)),
        )

    def segment_text(self, segment: int) -> bytes:
        """The segment's text as whisper.cpp produced it: UTF-8, possibly cut inside a character."""
        return self._lib.whisper_full_get_segment_text_from_state(self._pointer, segment) or b""

    def no_speech_prob(self, segment: int) -> float:
        """No-speech probability of the 30 s window segment `segment` came from."""
        return float(self._lib.whisper_full_get_segment_no_speech_prob_from_state(self._pointer, segment))

    def tokens(self, segment: int) -> list[TokenData]:
        """Every token of the segment, special tokens included, in order."""
        pointer = self._pointer
        count = self._lib.whisper_full_n_tokens_from_state(pointer, segment)
        return [self._lib.whisper_full_get_token_data_from_state(pointer, segment, j) for j in range(count)]


@dataclass(frozen=True, slots=True)
class VadSettings:
    threshold: float
    min_speech_ms: int
    min_silence_ms: int
    speech_pad_ms: int


def speech_regions(
    model: Path, samples: npt.NDArray[np.float32], settings: VadSettings, sample_rate: int
) -> list[tuple[float, float]]:
    """Stretches of speech in `samples` as (start, end) seconds, padded, in order (blocking: ~0.2 s per audio
    minute on one thread; more threads only add synchronisation to Silero's tiny per-frame graphs)."""
    lib = library()
    context_params = lib.whisper_vad_default_context_params()
    context_params.n_threads = 1
    context_params.use_gpu = False
    context = lib.whisper_vad_init_from_file_with_params(str(model).encode(), context_params)
    if not context:
        raise WhisperLibError(f"whisper.cpp could not load the VAD model {model}")
    try:
        params = lib.whisper_vad_default_params()
        params.threshold = settings.threshold
        params.min_speech_duration_ms = settings.min_speech_ms
        params.min_silence_duration_ms = settings.min_silence_ms
        params.speech_pad_ms = settings.speech_pad_ms
        data = np.ascontiguousarray(samples, dtype=np.float32)
        found = lib.whisper_vad_segments_from_samples(
            context, params, data.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), data.size
        )
        if not found:
            raise WhisperLibError("whisper.cpp's voice activity detection failed")
        try:
            total_s = data.size / sample_rate
            regions = []
            for i in range(lib.whisper_vad_segments_n_segments(found)):
                start = max(0.0, lib.whisper_vad_segments_get_segment_t0(found, i) / _CENTISECONDS)
                end = min(total_s, lib.whisper_vad_segments_get_segment_t1(found, i) / _CENTISECONDS)
                if end > start:
                    regions.append((start, end))
            return regions
        finally:
            lib.whisper_vad_free_segments(found)
    finally:
        lib.whisper_vad_free(context)
