"""Rendering a transcript as text, SRT and WebVTT: exact timing syntax."""

from __future__ import annotations

import json

from gateway.transcripts import render, timestamp
from schemas import Segment

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
