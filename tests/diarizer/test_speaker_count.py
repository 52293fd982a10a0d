"""The speaker-count options: what they allow, and the errors that say what to fix."""

from __future__ import annotations

import pytest

from diarizer import SpeakerCount, SpeakerCountError
from diarizer.options import DEFAULT_MAX_SPEAKERS, LIMIT


def test_no_option_means_estimate_between_one_and_the_default_most() -> None:
    assert SpeakerCount().bounds == (1, DEFAULT_MAX_SPEAKERS)


def test_num_speakers_fixes_both_bounds() -> None:
    assert SpeakerCount(num_speakers=3).bounds == (3, 3)


def test_a_minimum_above_the_default_most_raises_the_most_with_it() -> None:
    assert SpeakerCount(min_speakers=12).bounds == (12, 12)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_speakers": 0}, "num_speakers must be between 1 and 32, not 0"),
        ({"max_speakers": LIMIT + 1}, "max_speakers must be between 1 and 32, not 33"),
        ({"min_speakers": -2}, "min_speakers must be between 1 and 32, not -2"),
        ({"min_speakers": 4, "max_speakers": 2}, r"min_speakers \(4\) is more than max_speakers \(2\)"),
        ({"num_speakers": 5, "max_speakers": 3}, r"num_speakers \(5\) lies outside min_speakers..max_speakers"),
        ({"num_speakers": 1, "min_speakers": 2}, r"num_speakers \(1\) lies outside min_speakers..max_speakers"),
    ],
    ids=["num-zero", "max-over-limit", "min-negative", "min-over-max", "num-over-max", "num-under-min"],
)
def test_impossible_counts_are_refused_with_what_to_fix(options: dict[str, int], message: str) -> None:
    with pytest.raises(SpeakerCountError, match=message):
        SpeakerCount(**options)
