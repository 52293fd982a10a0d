"""Putting a speaker on every word and segment of a transcript, given the speaker turns.

A word gets the speaker whose turns overlap it longest; a word that overlaps no turn (Whisper's word times can
drift into pauses) gets the speaker of the nearest turn. A segment with words is split between two words wherever
their speakers differ, its text cut at the same place; a segment without words gets the speaker that overlaps it
longest and is never split, since there is nowhere to cut its text.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from diarizer.result import LabelledSegment, LabelledWord, SpeakerTurn
from schemas import Segment, Word


class TurnIndex:
    """The turns of one recording (in time order, not overlapping), searchable by time."""

    def __init__(self, turns: Sequence[SpeakerTurn]) -> None:
        if not turns:
            raise ValueError("a TurnIndex needs at least one turn")
        self._turns = list(turns)
        self._starts = [t.start for t in self._turns]
        self._ends = [t.end for t in self._turns]

    def speaker(self, start: float, end: float) -> str:
        """The speaker whose turns overlap [start, end] longest, else the speaker of the nearest turn."""
        first = bisect.bisect_left(self._ends, start)
        last = bisect.bisect_right(self._starts, end)
        overlap: dict[str, float] = {}
        for turn in self._turns[first:last]:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + min(end, turn.end) - max(start, turn.start)
        if overlap and max(overlap.values()) > 0:
            return max(overlap.items(), key=lambda item: item[1])[0]
        if overlap:
            # A zero-length word on a turn's edge.
            return next(iter(overlap))
        middle = (start + end) / 2
        candidates = [t for t in (self._turns[first - 1] if first > 0 else None, self._at(first)) if t is not None]
        return min(candidates, key=lambda t: max(t.start - middle, middle - t.end)).speaker

    def _at(self, index: int) -> SpeakerTurn | None:
        return self._turns[index] if index < len(self._turns) else None


def label_segments(segments: Sequence[Segment], turns: Sequence[SpeakerTurn]) -> list[LabelledSegment]:
    """The segments with a speaker on each segment and word, split where the speaker changes between words."""
    if not segments:
        return []
    index = TurnIndex(turns)
    labelled: list[LabelledSegment] = []
    for segment in segments:
        words = [_label_word(word, index) for word in segment.words]
        if not words:
            speaker = index.speaker(segment.start, segment.end)
            labelled.append(
                LabelledSegment(len(labelled), segment.start, segment.end, segment.text, speaker, (), segment.index)
            )
            continue
        pieces = _runs(words)
        texts = _split_text(segment.text, words, pieces)
        for number, (piece, text) in enumerate(zip(pieces, texts, strict=True)):
            start = segment.start if number == 0 else piece[0].start
            end = segment.end if number == len(pieces) - 1 else piece[-1].end
            labelled.append(
                LabelledSegment(len(labelled), start, end, text, piece[0].speaker, tuple(piece), segment.index)
            )
    return labelled


def _label_word(word: Word, index: TurnIndex) -> LabelledWord:
    return LabelledWord(word.start, word.end, word.word, word.probability, index.speaker(word.start, word.end))


def _runs(words: list[LabelledWord]) -> list[list[LabelledWord]]:
    runs: list[list[LabelledWord]] = [[words[0]]]
    for word in words[1:]:
        if word.speaker == runs[-1][-1].speaker:
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs


def _split_text(text: str, words: list[LabelledWord], pieces: list[list[LabelledWord]]) -> list[str]:
    """The segment text cut before the first word of each piece after the first.

    Each word is found in the text in order, so punctuation and spacing stay as Whisper wrote them (and scripts
    without spaces between words split correctly); if a word is not found, the pieces are their words joined by
    spaces instead.
    """
    if len(pieces) == 1:
        return [text]
    positions: list[int] = []
    at = 0
    for word in words:
        found = text.find(word.word, at)
        if found < 0:
            return [" ".join(w.word for w in piece) for piece in pieces]
        positions.append(found)
        at = found + len(word.word)
    cuts, counted = [], 0
    for piece in pieces[:-1]:
        counted += len(piece)
        cuts.append(positions[counted])
    bounds = [0, *cuts, len(text)]
    return [text[a:b].strip() for a, b in itertools.pairwise(bounds)]
