"""Where there is speech: an energy criterion on the 16 kHz samples, with no model.

Frames of 30 ms every 10 ms count as speech when their level is within `DYNAMIC_RANGE_DB` of the recording's loud
frames (the 95th percentile of frame levels) and above `FLOOR_DBFS`; pauses shorter than `MIN_PAUSE_S` are closed
and bursts shorter than `MIN_SPEECH_S` dropped. That is enough to place embedding windows on speech and keep
them off silences; it does not tell speech from loud noise or music, which then simply gets a speaker (the
Silero VAD that Whisper runs does that job upstream: see shared/notes/vad-diarization.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE: Final = 16_000
FRAME: Final = 480
"""30 ms."""
HOP: Final = 160
"""10 ms: speech times have this resolution."""
DYNAMIC_RANGE_DB: Final = 35.0
FLOOR_DBFS: Final = -55.0
MIN_PAUSE_S: Final = 0.25
MIN_SPEECH_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class Region:
    """A stretch of speech, in seconds from the start of the audio."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def frame_levels_dbfs(samples: NDArray[np.float32]) -> NDArray[np.float64]:
    """RMS level in dBFS of each 30 ms frame starting every 10 ms (−inf-free: silence is −120 dB)."""
    if len(samples) < FRAME:
        samples = np.pad(samples, (0, FRAME - len(samples)))
    squares = np.concatenate(([0.0], np.cumsum(np.square(samples, dtype=np.float64))))
    starts = np.arange(0, len(samples) - FRAME + 1, HOP)
    power = (squares[starts + FRAME] - squares[starts]) / FRAME
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def speech_regions(samples: NDArray[np.float32]) -> list[Region]:
    """The speech regions of 16 kHz mono samples, in time order, not overlapping."""
    levels = frame_levels_dbfs(samples)
    threshold = max(FLOOR_DBFS, float(np.percentile(levels, 95)) - DYNAMIC_RANGE_DB)
    voiced = levels > threshold
    regions: list[Region] = []
    for start, end in _runs(voiced):
        begin, finish = start * HOP / SAMPLE_RATE, (end * HOP + FRAME) / SAMPLE_RATE
        if regions and begin - regions[-1].end < MIN_PAUSE_S:
            regions[-1] = Region(regions[-1].start, finish)
        else:
            regions.append(Region(begin, finish))
    duration = len(samples) / SAMPLE_RATE
    return [Region(r.start, min(r.end, duration)) for r in regions if r.duration >= MIN_SPEECH_S]


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last) indices of each run of True values in `mask`."""
    edges = np.diff(np.concatenate(([False], mask, [False])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
