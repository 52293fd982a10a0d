"""Speech cut out of the audio and joined end to end, and the way back to the audio's own timeline.

Voice activity detection finds the stretches of speech; Whisper then hears only those, joined without the
silence between them (as faster-whisper's `collect_chunks` does), so it spends no time on silence and has none to
invent text for. Every time Whisper reports on the joined audio is mapped back here, stretch by stretch: a
segment or word keeps the time it has in the original recording.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import numpy as np

from jetscribe.stage.decode import SAMPLE_RATE, Samples
from schemas import Segment, Word


@dataclass(frozen=True, slots=True)
class SpeechMap:
    """Stretches of the original audio, (start, end) in seconds, sorted and apart; joined in this order."""

    regions: tuple[tuple[float, float], ...]
    _joined_starts: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        starts, at = [], 0.0
        for start, end in self.regions:
            starts.append(at)
            at += end - start
        object.__setattr__(self, "_joined_starts", tuple(starts))

    @classmethod
    def of(cls, regions: Iterable[tuple[float, float]], total_s: float) -> SpeechMap:
        """The map of `regions` (seconds, possibly overlapping or out of order), cut to [0, total_s] and merged."""
        merged: list[tuple[float, float]] = []
        for start, end in sorted((max(0.0, s), min(total_s, e)) for s, e in regions):
            if end <= start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return cls(tuple(merged))

    @classmethod
    def whole(cls, total_s: float) -> SpeechMap:
        """The identity map: all of the audio is kept."""
        return cls(((0.0, total_s),))

    @property
    def speech_s(self) -> float:
        """Seconds of audio kept."""
        return sum(end - start for start, end in self.regions)

    def join(self, samples: Samples) -> Samples:
        """The kept stretches of `samples` (16 kHz), one after the other."""
        if len(self.regions) == 1 and self.regions[0][0] == 0.0 and _index(self.regions[0][1]) >= samples.size:
            return samples
        parts = [samples[_index(start) : _index(end)] for start, end in self.regions]
        return np.concatenate(parts) if parts else samples[:0]

    def original(self, joined_s: float, *, end: bool = False) -> float:
        """Where `joined_s` (seconds into the joined audio) lies in the original audio.

        A time on the seam of two stretches is the end of the first when `end` is true (a segment or word that
        ends there), else the start of the second. Times past either end are clamped. Monotonic, so order and
        containment survive the mapping.
        """
        if not self.regions:
            return joined_s
        starts = self._joined_starts
        k = bisect.bisect_left(starts, joined_s) - 1 if end else bisect.bisect_right(starts, joined_s) - 1
        k = max(0, min(k, len(self.regions) - 1))
        start, stop = self.regions[k]
        return min(max(start + joined_s - starts[k], start), stop)

    def segment(self, segment: Segment) -> Segment:
        """`segment` (times on the joined audio) with its times and its words' on the original timeline."""
        if len(self.regions) == 1 and self.regions[0][0] == 0.0:
            return segment
        words = [self._word(w) for w in segment.words]
        start = self.original(segment.start)
        end = self.original(segment.end, end=True)
        if words:
            # Whisper's segment times are coarse (and a segment begins where the one before it ended): one that
            # starts just before a seam would map into the stretch before it, and span the silence between. Its
            # words say where its speech is: the segment begins in the stretch of its first word, ends in that of
            # its last.
            first, last = self._region_of(words[0].start), self._region_of(words[-1].end)
            start = max(start, self.regions[first][0]) if self._region_of(start) < first else start
            end = min(end, self.regions[last][1]) if self._region_of(end) > last else end
            start, end = min(start, words[0].start), max(end, words[-1].end)
        start = round(start, 3)
        return msgspec.structs.replace(segment, start=start, end=max(start, round(end, 3)), words=words)

    def _word(self, word: Word) -> Word:
        """`word` on the original timeline. A word that would straddle a seam (token times are coarse, and the
        silence between the stretches is gone) belongs to the stretch that holds most of it: speech does not cross
        a pause, and a sentence's last word often runs on past its stretch as its next one's first word starts
        early."""
        start, end = self.original(word.start), self.original(word.end, end=True)
        first, last = self._region_of(start), self._region_of(end)
        if first < last:
            region = max(range(first, last + 1), key=lambda k: (self._joined_overlap(k, word.start, word.end), k))
            start = max(start, self.regions[region][0])
            end = min(end, self.regions[region][1])
        return Word(start=round(start, 3), end=round(max(start, end), 3), word=word.word, probability=word.probability)

    def _joined_overlap(self, region: int, joined_start: float, joined_end: float) -> float:
        """Seconds of [joined_start, joined_end] (joined timeline) that fall in stretch `region`."""
        begin = self._joined_starts[region]
        stop = begin + self.regions[region][1] - self.regions[region][0]
        return max(0.0, min(stop, joined_end) - max(begin, joined_start))

    def _region_of(self, original_s: float) -> int:
        """Index of the last stretch starting at or before `original_s` (0 before the first)."""
        return max(0, bisect.bisect_right([start for start, _ in self.regions], original_s) - 1)


def _index(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)
