"""Diarization speed: seconds per minute of audio, wall-clock and CPU, on synthetic espeak-ng conversations of three
voices (tests/diarizer/conversations.py) of several lengths, with the share of speech on the wrong speaker alongside.

    .venv/bin/python -m benchmarks.diarization [--minutes 1 5 15] [--runs 3]

Each length is diarized `--runs` times (medians). The speaker encoder is timed inside the same runs through a
wrapper that implements `diarizer.SpeakerEncoder`; the rest is speech regions, clustering and turns. No transcript
is passed in: labelling words costs microseconds next to the encoder. CPU seconds count every thread of the
process (numpy's BLAS may use both cores), so on a shared machine they are the steadier figure.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from benchmarks.report import median, table
from diarizer import Diarizer, Ge2eEncoder
from tests.diarizer.conversations import converse, round_robin
from tests.diarizer.scoring import wrong_speaker_share

TURN_S = 4.6
"""Average turn plus pause of round_robin's conversations, to size them."""


class TimedEncoder:
    """The GE2E encoder, adding up the wall seconds its `embed` takes."""

    def __init__(self, encoder: Ge2eEncoder) -> None:
        self._encoder = encoder
        self.name, self.window_samples, self.dimension = encoder.name, encoder.window_samples, encoder.dimension
        self.seconds = 0.0
        self.windows = 0

    def embed(
        self, samples: NDArray[np.float32], starts: NDArray[np.int64], progress: Callable[[int], None] | None = None
    ) -> NDArray[np.float32]:
        start = time.perf_counter()
        try:
            return self._encoder.embed(samples, starts, progress)
        finally:
            self.seconds += time.perf_counter() - start
            self.windows = len(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0, 15.0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    encoder = TimedEncoder(Ge2eEncoder.load())
    diarizer = Diarizer(encoder)
    rows = [("load the encoder (read + digest-check the weights)", f"{time.perf_counter() - start:.2f} s")]
    for minutes in args.minutes:
        conversation = converse(round_robin(3, max(3, round(minutes * 60 / TURN_S))))
        audio_min = conversation.duration_s / 60
        walls, cpus, encoder_walls, results = [], [], [], []
        for _ in range(args.runs):
            encoder.seconds = 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            results.append(diarizer.diarize(conversation.samples))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            encoder_walls.append(encoder.seconds)
        assert all(r == results[0] for r in results), "diarization of the same audio differed between runs"
        label = f"{audio_min:.1f} min, 3 voices, {encoder.windows} windows"
        share = median(encoder_walls) / median(walls)
        rows += [
            (
                f"{label}: per audio minute, wall (CPU)",
                f"{median(walls) / audio_min:.2f} s ({median(cpus) / audio_min:.2f} s), encoder {100 * share:.0f} %",
            ),
            (
                f"{label}: speakers found, speech on the wrong speaker",
                f"{len(results[0].speakers)}, {100 * wrong_speaker_share(conversation, results[0].turns):.1f} %",
            ),
        ]
    table(f"Speaker diarization (numpy GE2E, CPU; median of {args.runs})", rows)


if __name__ == "__main__":
    main()
