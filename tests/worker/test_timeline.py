"""Speech joined for Whisper maps back onto the audio's own timeline, in order and inside its stretch."""

from __future__ import annotations

import numpy as np

from jetscribe.stage.decode import SAMPLE_RATE
from schemas import Segment, Word
from worker.timeline import SpeechMap


def test_regions_are_clipped_sorted_and_merged() -> None:
    speech = SpeechMap.of([(8.0, 12.0), (-1.0, 2.0), (1.5, 3.0), (29.0, 40.0)], total_s=30.0)

    assert speech.regions == ((0.0, 3.0), (8.0, 12.0), (29.0, 30.0))
    assert speech.speech_s == 8.0


def test_joined_audio_holds_only_the_regions() -> None:
    samples = np.arange(10 * SAMPLE_RATE, dtype=np.float32)
    speech = SpeechMap.of([(1.0, 2.0), (5.0, 6.5)], total_s=10.0)

    joined = speech.join(samples)

    assert joined.size == int(2.5 * SAMPLE_RATE)
    assert joined[0] == SAMPLE_RATE and joined[SAMPLE_RATE] == 5 * SAMPLE_RATE


def test_times_on_the_joined_audio_map_back_to_the_original() -> None:
    speech = SpeechMap.of([(20.0, 22.0), (60.0, 63.0)], total_s=70.0)

    assert speech.original(0.5) == 20.5
    assert speech.original(2.0) == 60.0
    assert speech.original(2.0, end=True) == 22.0
    assert speech.original(4.0) == 62.0
    assert speech.original(99.0) == 63.0


def test_a_segment_and_its_words_move_to_the_original_timeline_in_order() -> None:
    speech = SpeechMap.of([(20.0, 22.0), (60.0, 63.0)], total_s=70.0)
    segment = Segment(
        index=0, start=1.0, end=3.0, text="a b",
        words=[Word(1.0, 1.8, "a", 0.9), Word(2.1, 3.0, "b", 0.9)],
    )  # fmt: skip

    moved = speech.segment(segment)

    assert (moved.start, moved.end) == (21.0, 61.0)
    assert [(w.start, w.end) for w in moved.words] == [(21.0, 21.8), (60.1, 61.0)]


def test_the_whole_audio_maps_to_itself() -> None:
    segment = Segment(index=0, start=1.0, end=3.0, text="a")

    assert SpeechMap.whole(10.0).segment(segment) is segment


def test_a_segment_starting_just_before_a_seam_begins_where_its_words_do() -> None:
    # Whisper's coarse times put the second sentence's segment at 2.0 s of the joined audio, 0.1 s before the seam.
    speech = SpeechMap.of([(0.0, 2.1), (42.0, 45.0)], total_s=45.0)
    segment = Segment(index=1, start=2.0, end=4.5, text="b", words=[Word(2.2, 4.4, "b", 0.9)])

    moved = speech.segment(segment)

    assert (moved.start, moved.end) == (42.0, 44.4)


def test_a_word_straddling_a_seam_mostly_after_it_belongs_to_the_next_stretch() -> None:
    speech = SpeechMap.of([(0.0, 2.1), (42.0, 45.0)], total_s=45.0)
    segment = Segment(
        index=1, start=2.0, end=4.5, text="b c", words=[Word(2.0, 2.4, "b", 0.9), Word(2.4, 4.4, "c", 0.9)]
    )

    moved = speech.segment(segment)

    assert [(w.start, w.end) for w in moved.words] == [(42.0, 42.3), (42.3, 44.3)]
    assert moved.start == 42.0


def test_a_last_word_running_on_past_a_seam_stays_with_its_sentence() -> None:
    # The first sentence's last word ends 0.1 s past the seam on the joined audio (coarse token times); the next
    # sentence is 40 s later in the recording.
    speech = SpeechMap.of([(0.0, 2.1), (42.0, 45.0)], total_s=45.0)
    segment = Segment(
        index=0, start=0.0, end=2.2, text="a b", words=[Word(0.2, 1.8, "a", 0.9), Word(1.8, 2.2, "b", 0.9)]
    )

    moved = speech.segment(segment)

    assert [(w.start, w.end) for w in moved.words] == [(0.2, 1.8), (1.8, 2.1)]
    assert (moved.start, moved.end) == (0.0, 2.1)
