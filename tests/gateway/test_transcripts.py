"""Rendering a transcript as text, SRT and WebVTT: exact timing syntax."""

from __future__ import annotations

import json

from gateway.transcripts import CueLayout, cues, render, timestamp
from schemas import Segment, Word

SEGMENTS = [
    Segment(index=0, start=1.5, end=3.0, text=" Hello there."),
    Segment(index=1, start=3661.0406, end=3662.9996, text=" General Kenobi. "),
]


def test_timestamps_use_hours_minutes_seconds_and_milliseconds() -> None:
    assert timestamp(1.5, ",") == "00:00:01,500"
    assert timestamp(3661.0406, ".") == "01:01:01.041"
    assert timestamp(59.9996, ",") == "00:01:00,000"
    assert timestamp(-0.2, ",") == "00:00:00,000"


def test_srt_numbers_cues_from_one_with_comma_milliseconds() -> None:
    assert render(SEGMENTS, "srt").decode() == (
        "1\n00:00:01,500 --> 00:00:03,000\nHello there.\n\n2\n01:01:01,041 --> 01:01:03,000\nGeneral Kenobi.\n"
    )


def test_vtt_starts_with_its_header_and_uses_dot_milliseconds() -> None:
    assert render(SEGMENTS, "vtt").decode() == (
        "WEBVTT\n\n00:00:01.500 --> 00:00:03.000\nHello there.\n\n01:01:01.041 --> 01:01:03.000\nGeneral Kenobi.\n"
    )


def test_txt_is_one_stripped_line_per_segment() -> None:
    assert render(SEGMENTS, "txt").decode() == "Hello there.\nGeneral Kenobi.\n"


def test_json_is_the_list_of_segments() -> None:
    data = json.loads(render(SEGMENTS, "json"))
    assert [s["text"] for s in data] == [" Hello there.", " General Kenobi. "]
    assert data[0]["start"] == 1.5


def test_empty_transcript_renders_empty_documents() -> None:
    assert render([], "srt") == b""
    assert render([], "vtt") == b"WEBVTT\n\n"
    assert render([], "txt") == b""


WORDS = [
    Segment(
        index=0,
        start=0.0,
        end=6.0,
        text=" one two three four five six",
        words=[Word(float(i), i + 0.9, w, 0.9) for i, w in enumerate("one two three four five six".split())],
    )
]


def test_vtt_cue_text_is_escaped() -> None:
    segments = [Segment(index=0, start=0.0, end=1.0, text=" Tom & Jerry <3 --> x")]

    assert render(segments, "vtt").decode().splitlines()[3] == "Tom &amp; Jerry &lt;3 --&gt; x"


def test_segments_without_text_make_no_cue() -> None:
    segments = [Segment(index=0, start=0.0, end=1.0, text="  "), Segment(index=1, start=1.0, end=2.0, text=" Hi.")]

    assert render(segments, "srt").decode() == "1\n00:00:01,000 --> 00:00:02,000\nHi.\n"
    assert render(segments, "vtt").decode() == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHi.\n"
    assert render(segments, "txt").decode() == "Hi.\n"


def test_line_breaks_in_text_do_not_end_a_cue() -> None:
    segments = [Segment(index=0, start=0.0, end=1.0, text="a\n\nb")]

    assert render(segments, "srt").decode() == "1\n00:00:00,000 --> 00:00:01,000\na b\n"


def test_tsv_has_a_header_and_millisecond_times() -> None:
    assert render(SEGMENTS, "tsv").decode() == (
        "start\tend\ttext\n1500\t3000\tHello there.\n3661041\t3663000\tGeneral Kenobi.\n"
    )


def test_max_cue_s_cuts_a_long_segment_at_word_boundaries() -> None:
    found = cues(WORDS, CueLayout(max_cue_s=2.0))

    assert [c.lines for c in found] == [["one two"], ["three four"], ["five six"]]
    assert [(c.start, c.end) for c in found] == [(0.0, 1.9), (2.0, 3.9), (4.0, 6.0)]


def test_max_line_chars_wraps_into_two_lines_per_cue() -> None:
    found = cues(WORDS, CueLayout(max_line_chars=9))

    assert [c.lines for c in found] == [["one two", "three"], ["four five", "six"]]
    assert all(len(line) <= 9 for c in found for line in c.lines)


def test_words_of_a_language_without_spaces_join_without_them() -> None:
    segment = Segment(
        index=0, start=0.0, end=2.0, text="今日は天気",
        words=[Word(0.0, 0.5, "今日", 0.9), Word(0.5, 0.8, "は", 0.9), Word(0.8, 2.0, "天気", 0.9)],
    )  # fmt: skip

    assert [c.lines for c in cues([segment], CueLayout(max_line_chars=10))] == [["今日は天気"]]
