"""Who spoke when: speech regions → speaker embeddings of sliding windows → clustering → turns → labelled transcript.

`Diarizer.diarize` is blocking CPU work (about 3–7 CPU seconds per audio minute on two cores: BENCHMARKS.md); run it in
a worker thread, never on an event loop. The pieces are in their own modules: `speech` (where the speech is),
`timeline` (windows and turns), the encoder (`encoder.SpeakerEncoder`, `ge2e.Ge2eEncoder`), `clustering`, and
`attribution` (words and segments).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

from diarizer.attribution import label_segments
from diarizer.clustering import cluster_speakers
from diarizer.encoder import SpeakerEncoder
from diarizer.errors import DiarizationCancelledError, DiarizationInputError
from diarizer.ge2e import Ge2eEncoder
from diarizer.options import SpeakerCount
from diarizer.result import Diarization, Speaker, SpeakerTurn, speaker_label
from diarizer.speech import Region, speech_regions
from diarizer.timeline import LabelledSpan, Windows, place_windows, spans
from schemas import Segment

SAMPLE_RATE: Final = 16_000
EMBEDDING_SHARE: Final = 95
"""Percent of the progress the embeddings stand for: they are nearly all of the work."""
VOICELESS_NORM: Final = 0.5
"""An embedding shorter than this is the zero vector the encoder gives a window without voice."""


class Diarizer:
    """Speaker diarization with a given speaker encoder; one instance serves any number of recordings, one at a
    time (the encoder holds no per-call state, but the calls are CPU-bound: parallelism is per process)."""

    def __init__(self, encoder: SpeakerEncoder) -> None:
        self.encoder = encoder

    @classmethod
    def load(cls) -> Diarizer:
        """With the GE2E encoder from the installed `resemblyzer` package, digest-checked; raises ModelError."""
        return cls(Ge2eEncoder.load())

    def diarize(
        self,
        samples: NDArray[np.float32],
        segments: Sequence[Segment] = (),
        count: SpeakerCount | None = None,
        *,
        progress: Callable[[int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Diarization:
        """Diarize a recording and label its transcript.

        `samples`: the whole recording, 16 kHz mono float32 (as the worker decodes it). `segments`: its Whisper
        transcript (may be empty: then only turns and speakers come back). `count`: speaker-count constraints
        (default: estimate). `progress` is called with a percentage (0–100) as work advances; `cancelled` is
        polled between steps and batches, and True stops the work with DiarizationCancelledError.

        Raises DiarizationInputError for samples that are not a 1-D finite float32 array or a segment or word with
        negative, reversed or non-finite times; DiarizerError if clustering fails.
        """
        _check_samples(samples)
        _check_segments(segments)
        count = count or SpeakerCount()
        report = _Progress(progress, cancelled)
        regions = speech_regions(samples) if len(samples) else []
        if not regions:
            regions = _regions_of(segments, len(samples) / SAMPLE_RATE)
        windows = place_windows(regions, self.encoder.window_samples, len(samples))
        report.step(0, len(windows))
        embeddings = self.encoder.embed(samples, windows.starts, lambda done: report.step(done, len(windows)))
        report.check()
        region_s = np.array([region.end - region.start for region in regions])
        reliable = region_s[windows.regions] >= self.encoder.window_samples / SAMPLE_RATE
        clusters = _clusters(embeddings, windows, count.bounds, reliable)
        turns = _turns(spans(regions, windows, clusters))
        labelled = label_segments(segments, turns) if turns else []
        report.done()
        return Diarization(_speakers(turns), tuple(turns), tuple(labelled), self.encoder.name)


class _Progress:
    def __init__(self, progress: Callable[[int], None] | None, cancelled: Callable[[], bool] | None) -> None:
        self._progress = progress
        self._cancelled = cancelled
        self._last = -1

    def check(self) -> None:
        if self._cancelled is not None and self._cancelled():
            raise DiarizationCancelledError("diarization was cancelled")

    def step(self, done: int, total: int) -> None:
        self.check()
        self._emit(EMBEDDING_SHARE * done // total if total else EMBEDDING_SHARE)

    def done(self) -> None:
        self._emit(100)

    def _emit(self, percent: int) -> None:
        if self._progress is not None and percent != self._last:
            self._last = percent
            self._progress(percent)


def _check_samples(samples: NDArray[np.float32]) -> None:
    if not isinstance(samples, np.ndarray) or samples.ndim != 1 or samples.dtype != np.float32:
        shape = getattr(samples, "shape", None)
        dtype = getattr(samples, "dtype", type(samples).__name__)
        raise DiarizationInputError(f"samples must be a 1-D float32 array of 16 kHz mono audio, not {dtype} {shape}")
    if not np.isfinite(samples).all():
        raise DiarizationInputError("samples contain NaN or infinite values")


def _check_segments(segments: Sequence[Segment]) -> None:
    for segment in segments:
        for what, start, end in [
            (f"segment {segment.index}", segment.start, segment.end),
            *((f"word {w.word!r} of segment {segment.index}", w.start, w.end) for w in segment.words),
        ]:
            if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
                raise DiarizationInputError(f"{what} has impossible times {start}–{end} s")


def _regions_of(segments: Sequence[Segment], duration_s: float) -> list[Region]:
    """The transcript's segments as speech regions, for audio whose level never rose above the energy floor."""
    regions: list[Region] = []
    for segment in sorted(segments, key=lambda s: s.start):
        start, end = segment.start, min(segment.end, duration_s)
        if end <= start:
            continue
        if regions and start <= regions[-1].end:
            regions[-1] = Region(regions[-1].start, max(regions[-1].end, end))
        else:
            regions.append(Region(start, end))
    return regions


def _clusters(
    embeddings: NDArray[np.float32], windows: Windows, bounds: tuple[int, int], reliable: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """A cluster per window; a window without voice takes the cluster of the nearest window with one, a window
    longer than its speech region (`reliable` False) the nearest voice the others found."""
    voiced = np.flatnonzero(np.linalg.norm(embeddings, axis=1) >= VOICELESS_NORM)
    if len(voiced) == 0:
        return np.zeros(len(windows), dtype=np.int64)
    found = cluster_speakers(embeddings[voiced], windows.regions[voiced], bounds, reliable[voiced])
    nearest = np.clip(np.searchsorted(voiced, np.arange(len(windows))), 0, len(voiced) - 1)
    before = np.clip(nearest - 1, 0, len(voiced) - 1)
    closer_before = np.abs(voiced[before] - np.arange(len(windows))) < np.abs(voiced[nearest] - np.arange(len(windows)))
    return np.asarray(found[np.where(closer_before, before, nearest)], dtype=np.int64)


def _turns(pieces: list[LabelledSpan]) -> list[SpeakerTurn]:
    """Spans as turns, each cluster labelled `SPEAKER_nn` in the order the clusters are first heard."""
    labels: dict[int, str] = {}
    for piece in pieces:
        labels.setdefault(piece.cluster, speaker_label(len(labels)))
    turns = [SpeakerTurn(round(p.start, 2), round(p.end, 2), labels[p.cluster]) for p in pieces]
    return [turn for turn in turns if turn.end > turn.start]


def _speakers(turns: list[SpeakerTurn]) -> tuple[Speaker, ...]:
    totals: dict[str, list[float]] = {}
    for turn in turns:
        totals.setdefault(turn.speaker, []).append(turn.end - turn.start)
    return tuple(
        Speaker(speaker, round(sum(durations), 2), len(durations)) for speaker, durations in sorted(totals.items())
    )
