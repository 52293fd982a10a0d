"""Language identification on speech: Whisper's language token probabilities over a window of the job's speech.

Whisper detects the language from the first 30 s it is given (OpenAI `decoding.py`, `detect_language`; whisper.cpp
`whisper_lang_auto_detect`). Given the whole file, that is whatever the file starts with: silence, music, a jingle.
Here it is given the first 30 s of the speech voice activity detection found, and may be held to a list of allowed
languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import _pywhispercpp as pw
import numpy as np

from jetscribe.stage.decode import SAMPLE_RATE, Samples
from jetscribe.stage.errors import RetryableError

WINDOW_S: Final = 30.0


def identify_language(
    ctx: object, speech: Samples, *, threads: int, allowed: Sequence[str] | None
) -> tuple[str, float]:
    """The most probable language of the first `WINDOW_S` of `speech` (among `allowed`, when given) and Whisper's
    probability of it (over all languages, so it is comparable between jobs). Blocking: one encoder pass."""
    window = np.ascontiguousarray(speech[: int(WINDOW_S * SAMPLE_RATE)], dtype=np.float32)
    if pw.whisper_pcm_to_mel(ctx, window, window.size, threads) != 0:
        raise RetryableError("whisper.cpp could not compute the spectrogram for language identification")
    probabilities = np.zeros(pw.whisper_lang_max_id() + 1, dtype=np.float32)
    if pw.whisper_lang_auto_detect(ctx, 0, threads, probabilities) < 0:
        raise RetryableError("whisper.cpp's language identification failed")
    candidates = range(probabilities.size) if not allowed else [pw.whisper_lang_id(code) for code in allowed]
    best = max((i for i in candidates if i >= 0), key=lambda i: float(probabilities[i]))
    return pw.whisper_lang_str(best), round(float(probabilities[best]), 4)
