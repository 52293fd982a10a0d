"""The few libwhisper functions pywhispercpp 1.5.1 does not bind, called through ctypes on the very library it loaded.

- `whisper_full_get_segment_no_speech_prob`: the no-speech probability whisper.cpp computed for the 30 s window a
  segment came from (whisper.h; not in the binding).
- Silero VAD (`whisper_vad_*`): the binding's own VAD functions are broken in 1.5.1 (`whisper_vad_init_from_file_
  with_params` raises "Unregistered type: whisper_vad_context_wrapper"), the C functions work.
- `whisper_log_set`: whisper.cpp and ggml write every log line to stderr by default (about 30 lines per VAD pass,
  more for each model load); `route_logs` sends them to Python logging instead, warnings and errors as such and
  the rest at DEBUG.

The library is the one `_pywhispercpp` is linked against (found in this process's memory map), so the context
pointer the binding holds is valid here. That pointer is read from the binding's wrapper object (a pybind11
instance holding a pointer to `struct whisper_context_wrapper { whisper_context * ptr; }`) and checked against the
binding before use: `context_pointer` raises WhisperLibError if the layout is not the expected one. Struct
layouts follow whisper.h of libwhisper 1.8.5.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

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
        "whisper_full_get_segment_no_speech_prob": ([void_p, c_int], c_float),
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
    holder = ctypes.c_void_p.from_address(id(ctx) + _PYBIND_VALUE_OFFSET).value
    pointer = ctypes.c_void_p.from_address(holder).value if holder else None
    lib = library()
    if not pointer or lib.whisper_n_vocab(pointer) != pw.whisper_n_vocab(ctx):
        raise WhisperLibError("pywhispercpp's context object does not have the layout this worker expects")
    return pointer


def no_speech_prob(pointer: int, segment: int) -> float:
    """No-speech probability of the window segment `segment` of the last `whisper_full` came from."""
    return float(library().whisper_full_get_segment_no_speech_prob(pointer, segment))


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
