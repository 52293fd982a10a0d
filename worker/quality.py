"""Measures of a decoded segment (OpenAI's `verbose_json` detail) and the last guard against a repetition loop.

whisper.cpp falls back to higher temperatures when a window's text loops (its entropy test) or is improbable;
when even the last temperature loops, it keeps that text. Such a segment is caught here by Whisper's own
compression-ratio test (`whisper/utils.py`, `compression_ratio`: UTF-8 bytes over zlib-compressed bytes) and cut
after the first copy of its longest repeated run of tokens.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Final

MIN_COPIES: Final = 3
"""A run counts as a loop from this many back-to-back copies of the same tokens."""
MAX_UNIT_TOKENS: Final = 32
"""Longest repeated unit looked for (Whisper's loops repeat a word or a short phrase)."""


def compression_ratio(text: str) -> float:
    """UTF-8 bytes of `text` over its zlib-compressed bytes (Whisper's measure; 0.0 for empty text)."""
    data = text.encode("utf-8")
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data))


def loop_cut(tokens: Sequence[int]) -> int | None:
    """Where to cut `tokens` to drop a repetition loop: the end of the first copy of the run of at least
    `MIN_COPIES` back-to-back copies that covers the most tokens; None when no run repeats that often."""
    best: tuple[int, int] | None = None  # (tokens covered, cut)
    n = len(tokens)
    for unit in range(1, min(MAX_UNIT_TOKENS, n // MIN_COPIES) + 1):
        start = 0
        while start + unit * MIN_COPIES <= n:
            copies = 1
            while start + (copies + 1) * unit <= n and (
                tokens[start + copies * unit : start + (copies + 1) * unit] == tokens[start : start + unit]
            ):
                copies += 1
            if copies >= MIN_COPIES:
                covered = copies * unit
                if best is None or covered > best[0]:
                    best = (covered, start + unit)
                start += covered
            else:
                start += 1
    return None if best is None else best[1]


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
