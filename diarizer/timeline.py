"""Where embedding windows go on the speech, and how the windows' speakers become speaker turns.

Windows of the encoder's length (1.6 s for GE2E) start every `HOP_S` (0.4 s) inside each speech region, the last
one flush with the region's end; a region shorter than a window gets one window centred on it. Each window speaks
for the stretch of its region nearest its centre, so a turn boundary falls halfway between the centres of two
neighbouring windows with different speakers: a speaker change inside a region is placed to within about a hop.
A lone window whose two neighbours in the region agree on another speaker takes theirs: 0.4 s is shorter than
any turn worth reporting, and such a window has usually straddled the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from diarizer.speech import Region

SAMPLE_RATE: Final = 16_000
HOP_S: Final = 0.4
"""Between window starts: the value measured in shared/notes/vad-diarization.md (0–1.3 % of speech time on the
wrong speaker on synthetic conversations); halving it doubles the encoder's work for little gain."""


@dataclass(frozen=True, slots=True)
class Windows:
    starts: NDArray[np.int64]
    """First sample of each window, in time order."""
    regions: NDArray[np.int64]
    """Index of the speech region each window belongs to."""
    length: int
    """Samples per window."""

    def __len__(self) -> int:
        return len(self.starts)

    def centres_s(self) -> NDArray[np.float64]:
        return (self.starts + self.length / 2) / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class LabelledSpan:
    """A stretch of one region given to one cluster of windows (a speaker before it gets its label)."""

    start: float
    end: float
    cluster: int


def place_windows(regions: Sequence[Region], window_samples: int, total_samples: int) -> Windows:
    """The windows covering `regions` of a recording of `total_samples` samples."""
    hop = round(HOP_S * SAMPLE_RATE)
    starts: list[int] = []
    owners: list[int] = []
    for index, region in enumerate(regions):
        first, last = round(region.start * SAMPLE_RATE), round(region.end * SAMPLE_RATE)
        if last - first <= window_samples:
            centre = (first + last) // 2
            placed = [min(max(centre - window_samples // 2, 0), max(total_samples - window_samples, 0))]
        else:
            placed = list(range(first, last - window_samples + 1, hop))
            if placed[-1] + window_samples < last:
                placed.append(last - window_samples)
        starts += placed
        owners += [index] * len(placed)
    return Windows(np.array(starts, dtype=np.int64), np.array(owners, dtype=np.int64), window_samples)


def spans(regions: Sequence[Region], windows: Windows, clusters: NDArray[np.int64]) -> list[LabelledSpan]:
    """Each region cut where its windows' clusters change, in time order; neighbouring pieces of one cluster
    within a region are one span."""
    centres = windows.centres_s()
    out: list[LabelledSpan] = []
    for index, region in enumerate(regions):
        members = np.flatnonzero(windows.regions == index)
        if len(members) == 0:
            continue
        labels = _without_blips(clusters[members])
        start = region.start
        for k in range(1, len(members)):
            if labels[k] != labels[k - 1]:
                boundary = float(centres[members[k - 1]] + centres[members[k]]) / 2
                boundary = min(max(boundary, start), region.end)
                out.append(LabelledSpan(start, boundary, int(labels[k - 1])))
                start = boundary
        out.append(LabelledSpan(start, region.end, int(labels[-1])))
    return [s for s in out if s.end > s.start]


def _without_blips(labels: NDArray[np.int64]) -> NDArray[np.int64]:
    smoothed = labels.copy()
    for k in range(1, len(labels) - 1):
        if labels[k - 1] == labels[k + 1] != labels[k]:
            smoothed[k] = labels[k - 1]
    return smoothed
