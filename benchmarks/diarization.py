"""Diarization speed: seconds of CPU work per minute of audio, on synthetic espeak-ng conversations of three voices
(tests/diarizer/conversations.py) of several lengths, with the share of speech on the wrong speaker alongside.

    .venv/bin/python -m benchmarks.diarization [--minutes 1 5 15] [--runs 3]

Each length is diarized `--runs` times (median); the split between the speaker encoder and the rest (speech
regions, clustering, turns) comes from timing the encoder on the same windows alone. No transcript is passed in:
labelling words costs microseconds next to the encoder.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.report import median, table
from diarizer import Diarizer
from diarizer.speech import speech_regions
from diarizer.timeline import place_windows
from tests.diarizer.conversations import converse, round_robin
from tests.diarizer.scoring import wrong_speaker_share

TURN_S = 4.6
"""Average turn plus pause of round_robin's conversations, to size them."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0, 15.0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    diarizer = Diarizer.load()
    rows = [("load the encoder (read + digest-check the weights)", f"{time.perf_counter() - start:.2f} s")]
    for minutes in args.minutes:
        conversation = converse(round_robin(3, max(3, round(minutes * 60 / TURN_S))))
        audio_min = conversation.duration_s / 60
        totals, results = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            results.append(diarizer.diarize(conversation.samples))
            totals.append(time.perf_counter() - start)
        windows = place_windows(
            speech_regions(conversation.samples), diarizer.encoder.window_samples, len(conversation.samples)
        )
        start = time.perf_counter()
        diarizer.encoder.embed(conversation.samples, windows.starts)
        encoder_s = time.perf_counter() - start
        result = results[0]
        label = f"{audio_min:.1f} min, 3 voices, {len(windows)} windows"
        rows += [
            (
                f"{label}: diarization (median of {args.runs})",
                f"{median(totals):.1f} s = {median(totals) / audio_min:.2f} s per audio minute",
            ),
            (f"{label}: of which the speaker encoder", f"{encoder_s / audio_min:.2f} s per audio minute"),
            (
                f"{label}: speakers found, speech on the wrong speaker",
                f"{len(result.speakers)}, {100 * wrong_speaker_share(conversation, result.turns):.1f} %",
            ),
        ]
        assert all(r == result for r in results), "diarization of the same audio differed between runs"
    table("Speaker diarization (numpy GE2E, CPU)", rows)
    print(f"\nnumpy {np.__version__}")


if __name__ == "__main__":
    main()
