"""Words with timings from Whisper's BPE tokens: pieces are merged into words, kept in order and
inside their segment (token timestamps can stray slightly past a segment's bounds).

Languages written without spaces between words (Chinese, Japanese, Thai, Lao, Burmese, Cantonese) get one word
per token that ends on a whole character, as Whisper's own `split_tokens_on_unicode` does for them: a space-based
split would make a whole phrase one "word".
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import Word

CENTISECONDS: float = 100.0


@dataclass(frozen=True, slots=True)
class TokenPiece:
    """One text token as whisper.cpp reports it: raw bytes, times in 10 ms units, probability."""

    text: bytes
    t0: int
    t1: int
    p: float


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _whole(text: bytes) -> bool:
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _groups(pieces: list[TokenPiece], *, spaced: bool) -> list[list[TokenPiece]]:
    groups: list[list[TokenPiece]] = []
    for piece in pieces:
        if not groups:
            groups.append([piece])
        elif spaced:
            if piece.text.startswith(b" "):
                groups.append([piece])
            else:
                groups[-1].append(piece)
        elif _whole(b"".join(p.text for p in groups[-1])):
            groups.append([piece])
        else:
            groups[-1].append(piece)
    return groups


def merge_words(pieces: list[TokenPiece], seg_start: float, seg_end: float, *, spaced: bool = True) -> list[Word]:
    """Words of one segment, in order and inside [seg_start, seg_end].

    `spaced` (languages that put spaces between words): a piece starting with a space begins a new word, others
    extend the current one. Otherwise each piece is a word of its own, but for pieces that hold only part of a
    character, which join the next. Bytes are joined before decoding, so a character split across tokens comes
    out whole. A word's probability is the mean of its pieces'.
    """
    groups = _groups(pieces, spaced=spaced)
    words: list[Word] = []
    previous_end = seg_start
    for group in groups:
        text = b"".join(p.text for p in group).decode("utf-8", "replace").strip()
        if not text:
            continue
        start = _clamp(group[0].t0 / CENTISECONDS, previous_end, seg_end)
        end = _clamp(max(p.t1 for p in group) / CENTISECONDS, start, seg_end)
        probability = sum(p.p for p in group) / len(group)
        words.append(Word(start=round(start, 2), end=round(end, 2), word=text, probability=round(probability, 4)))
        previous_end = end
    return words
