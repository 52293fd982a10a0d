"""A speaker on every word and segment: overlap with the turns, nearest turn in pauses, segments split at changes."""

from __future__ import annotations

from typing import Final

from diarizer import SpeakerTurn
from diarizer.attribution import label_segments
from schemas import Segment, Word

TURNS: Final = (
    SpeakerTurn(0.0, 4.0, "SPEAKER_00"),
    SpeakerTurn(4.0, 7.0, "SPEAKER_01"),
    SpeakerTurn(8.0, 10.0, "SPEAKER_00"),
)


def words(*spans: tuple[str, float, float]) -> list[Word]:
    return [Word(start, end, text, 0.9) for text, start, end in spans]


def test_a_word_gets_the_speaker_it_overlaps_most() -> None:
    segment = Segment(
        index=0, start=3.0, end=4.5, text="almost over", words=words(("almost", 3.0, 3.9), ("over", 3.9, 4.4))
    )

    (first, second) = label_segments([segment], TURNS)

    assert first.words[0].speaker == "SPEAKER_00"
    assert second.words[0].speaker == "SPEAKER_01"


def test_a_word_in_a_pause_gets_the_nearest_turns_speaker() -> None:
    segment = Segment(
        index=0, start=7.1, end=7.95, text="um, well", words=words(("um,", 7.1, 7.3), ("well", 7.7, 7.95))
    )

    labelled = label_segments([segment], TURNS)

    assert [w.speaker for s in labelled for w in s.words] == ["SPEAKER_01", "SPEAKER_00"]


def test_a_word_after_the_last_turn_gets_the_last_speaker() -> None:
    segment = Segment(index=0, start=10.2, end=11.0, text="Bye.", words=words(("Bye.", 10.2, 11.0)))

    (labelled,) = label_segments([segment], TURNS)

    assert labelled.speaker == "SPEAKER_00"


def test_a_segment_whose_speaker_changes_between_words_is_split_there_with_its_text() -> None:
    segment = Segment(
        index=7,
        start=2.5,
        end=5.6,
        text="I think we could meet on Friday.",
        words=words(
            ("I", 2.6, 2.8),
            ("think", 2.8, 3.1),
            ("we", 3.1, 3.4),
            ("could", 3.4, 3.9),
            ("meet", 4.1, 4.4),
            ("on", 4.4, 4.6),
            ("Friday.", 4.6, 5.5),
        ),
    )

    first, second = label_segments([segment], TURNS)

    assert (first.text, first.speaker, first.start, first.end) == ("I think we could", "SPEAKER_00", 2.5, 3.9)
    assert (second.text, second.speaker, second.start, second.end) == ("meet on Friday.", "SPEAKER_01", 4.1, 5.6)
    assert [w.word for w in first.words] == ["I", "think", "we", "could"]
    assert all(w.speaker == "SPEAKER_01" for w in second.words)


def test_split_segments_are_renumbered_and_remember_their_source() -> None:
    segments = [
        Segment(index=0, start=3.0, end=5.0, text="one two", words=words(("one", 3.0, 3.5), ("two", 4.2, 4.8))),
        Segment(index=1, start=8.2, end=9.0, text="three", words=words(("three", 8.2, 9.0))),
    ]

    labelled = label_segments(segments, TURNS)

    assert [(s.index, s.source_index, s.text) for s in labelled] == [(0, 0, "one"), (1, 0, "two"), (2, 1, "three")]


def test_text_without_spaces_between_words_is_cut_at_the_word() -> None:
    segment = Segment(
        index=0, start=3.0, end=5.0, text="今日は晴れ", words=words(("今日は", 3.0, 3.8), ("晴れ", 4.2, 4.9))
    )

    first, second = label_segments([segment], TURNS)

    assert (first.text, second.text) == ("今日は", "晴れ")


def test_words_not_found_in_the_text_are_joined_with_spaces() -> None:
    segment = Segment(index=0, start=3.0, end=5.0, text="(garbled)", words=words(("one", 3.0, 3.5), ("two", 4.2, 4.8)))

    first, second = label_segments([segment], TURNS)

    assert (first.text, second.text) == ("one", "two")


def test_a_segment_without_words_gets_the_speaker_it_overlaps_most_and_is_not_split() -> None:
    segment = Segment(index=0, start=3.5, end=6.0, text="no word timings here")

    (labelled,) = label_segments([segment], TURNS)

    assert (labelled.speaker, labelled.text, labelled.words) == ("SPEAKER_01", "no word timings here", ())


def test_a_zero_length_word_on_a_turn_edge_gets_a_speaker() -> None:
    segment = Segment(index=0, start=4.0, end=4.0, text="a", words=words(("a", 4.0, 4.0)))

    (labelled,) = label_segments([segment], TURNS)

    assert labelled.words[0].speaker in {"SPEAKER_00", "SPEAKER_01"}


def test_no_segments_give_no_labelled_segments() -> None:
    assert label_segments([], TURNS) == []
