"""Diarization of synthetic conversations: espeak-ng voices taking turns of 3–6 s, with the exact truth.

These are plumbing checks (the voices are clearly different and the audio clean), not accuracy claims: see
docs/diarization.md for what to expect on real recordings.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Final

import numpy as np
import pytest

from diarizer import (
    Diarization,
    DiarizationCancelledError,
    DiarizationInputError,
    Diarizer,
    SpeakerCount,
)
from schemas import Segment, Word
from tests.diarizer.conversations import Conversation
from tests.diarizer.scoring import wrong_speaker_share

MAX_WRONG_SHARE: Final = 0.05
MAX_WRONG_SHARE_WITHOUT_PAUSES: Final = 0.1
Diarized = Callable[[str], Diarization]


@pytest.mark.parametrize("name", ["two_speakers", "three_speakers", "four_speakers"])
def test_a_conversation_gets_its_number_of_speakers_and_at_most_5_percent_of_speech_on_the_wrong_one(
    diarized: Diarized, name: str, request: pytest.FixtureRequest
) -> None:
    conversation: Conversation = request.getfixturevalue(name)

    result = diarized(name)

    assert len(result.speakers) == conversation.speakers
    assert wrong_speaker_share(conversation, result.turns) <= MAX_WRONG_SHARE


def test_a_speaker_change_inside_a_sentence_becomes_a_turn_boundary(
    diarized: Diarized, change_mid_sentence: Conversation
) -> None:
    change = next(t.start for previous, t in itertools.pairwise(change_mid_sentence.turns) if t.start == previous.end)

    result = diarized("change_mid_sentence")

    boundaries = [b.start for a, b in itertools.pairwise(result.turns) if a.end == b.start and a.speaker != b.speaker]
    assert len(result.speakers) == 3
    assert wrong_speaker_share(change_mid_sentence, result.turns) <= MAX_WRONG_SHARE
    assert min(abs(b - change) for b in boundaries) <= 0.5


def test_turns_without_a_pause_between_them_get_their_speakers(diarized: Diarized, back_to_back: Conversation) -> None:
    result = diarized("back_to_back")

    assert len(result.speakers) == back_to_back.speakers
    # Without pauses every boundary is found from the voices alone, to within a window hop (0.4 s) of the truth.
    assert wrong_speaker_share(back_to_back, result.turns) <= MAX_WRONG_SHARE_WITHOUT_PAUSES


def test_a_monologue_has_one_speaker(diarized: Diarized) -> None:
    result = diarized("monologue")

    assert [s.speaker for s in result.speakers] == ["SPEAKER_00"]


@pytest.mark.parametrize("num_speakers", [1, 2, 4])
def test_num_speakers_fixes_the_count(diarizer: Diarizer, three_speakers: Conversation, num_speakers: int) -> None:
    result = diarizer.diarize(three_speakers.samples, count=SpeakerCount(num_speakers=num_speakers))

    assert len(result.speakers) == num_speakers


def test_max_speakers_caps_the_estimate(diarizer: Diarizer, four_speakers: Conversation) -> None:
    result = diarizer.diarize(four_speakers.samples, count=SpeakerCount(max_speakers=2))

    assert len(result.speakers) == 2


def test_min_speakers_raises_the_estimate(diarizer: Diarizer, monologue: Conversation) -> None:
    result = diarizer.diarize(monologue.samples, count=SpeakerCount(min_speakers=2))

    assert len(result.speakers) == 2


def test_bounds_that_hold_the_true_count_leave_it_alone(diarizer: Diarizer, three_speakers: Conversation) -> None:
    result = diarizer.diarize(three_speakers.samples, count=SpeakerCount(min_speakers=2, max_speakers=5))

    assert len(result.speakers) == 3


def test_speakers_are_numbered_in_the_order_they_are_first_heard(diarized: Diarized) -> None:
    result = diarized("four_speakers")

    first_heard = list(dict.fromkeys(turn.speaker for turn in result.turns))
    assert first_heard == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02", "SPEAKER_03"]
    assert [s.speaker for s in result.speakers] == first_heard


def test_each_speakers_speaking_time_is_the_sum_of_their_turns_and_close_to_the_truth(
    diarized: Diarized, two_speakers: Conversation
) -> None:
    result = diarized("two_speakers")

    for speaker in result.speakers:
        theirs = [t for t in result.turns if t.speaker == speaker.speaker]
        assert speaker.speaking_time_s == pytest.approx(sum(t.end - t.start for t in theirs), abs=0.02)
        assert speaker.turns == len(theirs)
    true_total = sum(t.end - t.start for t in two_speakers.turns)
    assert sum(s.speaking_time_s for s in result.speakers) == pytest.approx(true_total, rel=0.05)


def test_turns_are_in_time_order_and_do_not_overlap(diarized: Diarized) -> None:
    turns = diarized("three_speakers").turns

    assert all(t.start < t.end for t in turns)
    assert all(a.end <= b.start for a, b in itertools.pairwise(turns))


def test_the_same_audio_gets_the_same_result(
    diarizer: Diarizer, diarized: Diarized, three_speakers: Conversation
) -> None:
    assert diarizer.diarize(three_speakers.samples) == diarized("three_speakers")


def test_the_result_names_the_encoder(diarized: Diarized) -> None:
    assert diarized("two_speakers").model == "resemblyzer-ge2e-0.1.4"


def test_progress_rises_to_100(diarizer: Diarizer, two_speakers: Conversation) -> None:
    seen: list[int] = []

    diarizer.diarize(two_speakers.samples, progress=seen.append)

    assert seen == sorted(seen)
    assert seen[-1] == 100
    assert len(seen) > 2


def test_a_cancel_check_that_says_yes_stops_the_work(diarizer: Diarizer, two_speakers: Conversation) -> None:
    checks = 0

    def cancelled() -> bool:
        nonlocal checks
        checks += 1
        return checks > 2

    with pytest.raises(DiarizationCancelledError, match="cancelled"):
        diarizer.diarize(two_speakers.samples, cancelled=cancelled)


def test_silence_has_no_speakers(diarizer: Diarizer) -> None:
    result = diarizer.diarize(np.zeros(16_000 * 5, dtype=np.float32))

    assert result.speakers == ()
    assert result.turns == ()


def test_empty_audio_has_no_speakers(diarizer: Diarizer) -> None:
    result = diarizer.diarize(np.zeros(0, dtype=np.float32))

    assert (result.speakers, result.turns, result.segments) == ((), (), ())


def test_audio_below_the_energy_floor_falls_back_on_the_transcripts_segments(
    diarizer: Diarizer, two_speakers: Conversation
) -> None:
    whisper = 10 ** (-70 / 20) / np.sqrt(np.mean(np.square(two_speakers.samples)))
    quiet = (two_speakers.samples * whisper).astype(np.float32)
    segments = [Segment(index=0, start=0.5, end=4.0, text="Hello.", words=[Word(0.6, 1.0, "Hello.", 0.9)])]

    result = diarizer.diarize(quiet, segments)

    assert [s.speaker for s in result.segments] == ["SPEAKER_00"]
    assert result.turns[0].start == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros(16_000, dtype=np.int16), "float32"),
        (np.zeros(16_000, dtype=np.float64), "float32"),
        (np.zeros((2, 16_000), dtype=np.float32), "1-D"),
        (np.array([0.0, np.nan, 0.1], dtype=np.float32), "NaN"),
        (np.array([0.0, np.inf], dtype=np.float32), "infinite"),
    ],
    ids=["int16", "float64", "stereo", "nan", "inf"],
)
def test_samples_that_are_not_16k_mono_float32_are_refused(
    diarizer: Diarizer, samples: np.ndarray, message: str
) -> None:
    with pytest.raises(DiarizationInputError, match=message):
        diarizer.diarize(samples)


@pytest.mark.parametrize(
    "segment",
    [
        Segment(index=3, start=2.0, end=1.0, text="backwards"),
        Segment(index=3, start=-1.0, end=1.0, text="before the start"),
        Segment(index=3, start=0.0, end=float("nan"), text="nan"),
        Segment(index=3, start=0.0, end=2.0, text="bad word", words=[Word(1.5, 1.0, "bad", 0.5)]),
    ],
    ids=["reversed", "negative", "nan", "reversed-word"],
)
def test_a_transcript_with_impossible_times_is_refused(diarizer: Diarizer, segment: Segment) -> None:
    with pytest.raises(DiarizationInputError, match="impossible times"):
        diarizer.diarize(np.zeros(16_000, dtype=np.float32), [segment])
