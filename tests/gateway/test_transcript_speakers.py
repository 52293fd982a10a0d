"""A diarized transcript shows who speaks in every format: WebVTT voice spans, SRT prefixes, text turns, a TSV
column, JSON fields."""

from __future__ import annotations

import json

from gateway.transcripts import CueLayout, render
from schemas import Segment, Word

DIARIZED = [
    Segment(index=0, start=0.5, end=2.0, text=" Shall we start?", speaker="SPEAKER_00"),
    Segment(index=1, start=2.5, end=4.0, text=" Yes, let's.", speaker="SPEAKER_01"),
    Segment(index=2, start=4.0, end=5.0, text=" Right away.", speaker="SPEAKER_01"),
]


def test_vtt_opens_each_cue_with_a_voice_span_naming_the_speaker() -> None:
    assert render(DIARIZED, "vtt").decode() == (
        "WEBVTT\n\n"
        "00:00:00.500 --> 00:00:02.000\n<v SPEAKER_00>Shall we start?\n\n"
        "00:00:02.500 --> 00:00:04.000\n<v SPEAKER_01>Yes, let's.\n\n"
        "00:00:04.000 --> 00:00:05.000\n<v SPEAKER_01>Right away.\n"
    )


def test_srt_prefixes_each_cue_with_the_speaker_in_brackets() -> None:
    assert (
        render(DIARIZED, "srt").decode().split("\n\n")[1]
        == "2\n00:00:02,500 --> 00:00:04,000\n[SPEAKER_01] Yes, let's."
    )


def test_txt_gives_one_line_per_turn_of_a_speaker() -> None:
    assert render(DIARIZED, "txt").decode() == "SPEAKER_00: Shall we start?\nSPEAKER_01: Yes, let's. Right away.\n"


def test_tsv_has_a_speaker_column_before_the_text() -> None:
    assert render(DIARIZED, "tsv").decode().splitlines()[:2] == [
        "start\tend\tspeaker\ttext",
        "500\t2000\tSPEAKER_00\tShall we start?",
    ]


def test_json_carries_the_speaker_of_segments_and_words() -> None:
    segment = Segment(
        index=0,
        start=0.0,
        end=1.0,
        text=" Hi.",
        speaker="SPEAKER_00",
        words=[Word(0.0, 1.0, " Hi.", 0.9, "SPEAKER_00")],
    )
    data = json.loads(render([segment], "json"))
    assert data[0]["speaker"] == "SPEAKER_00" and data[0]["words"][0]["speaker"] == "SPEAKER_00"


def test_cues_split_by_length_keep_their_segments_speaker() -> None:
    words = [Word(float(i), i + 0.9, f" word{i}", 0.9, "SPEAKER_01") for i in range(6)]
    segment = Segment(index=0, start=0.0, end=6.0, text=" " + " ".join(f"word{i}" for i in range(6)), words=words,
                      speaker="SPEAKER_01")  # fmt: skip
    vtt = render([segment], "vtt", CueLayout(max_cue_s=2.0)).decode()
    assert vtt.count("<v SPEAKER_01>") == vtt.count(" --> ") == 3


def test_a_transcript_without_speakers_renders_as_before() -> None:
    plain = [Segment(index=0, start=0.5, end=2.0, text=" Shall we start?")]
    assert render(plain, "txt").decode() == "Shall we start?\n"
    assert "<v " not in render(plain, "vtt").decode() and "[" not in render(plain, "srt").decode()
    assert render(plain, "tsv").decode().startswith("start\tend\ttext\n")
