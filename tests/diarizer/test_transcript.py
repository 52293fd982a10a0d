"""A real transcript labelled: tiny.en transcribes a synthetic conversation, diarization puts a speaker on every
segment and word, and the segment in which the speaker changes mid-sentence is split there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from diarizer import Diarization, Diarizer
from jetscribe.stage.abort import AbortSignal
from schemas import DecodeOptions, Segment
from tests.diarizer.conversations import Conversation
from tests.engines import loaded_engine
from worker.engine import DecodeRequest, Hooks


def transcribe(model_cache: Path, conversation: Conversation) -> list[Segment]:
    hooks = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())
    request = DecodeRequest("en", "transcribe", DecodeOptions())
    with loaded_engine("whispercpp", "tiny.en", model_cache) as engine:
        return engine.transcribe(conversation.samples, request, hooks).segments


@pytest.fixture(scope="module")
def labelled(model_cache: Path, change_mid_sentence: Conversation, diarizer: Diarizer) -> Diarization:
    return diarizer.diarize(change_mid_sentence.samples, transcribe(model_cache, change_mid_sentence))


def true_speaker(conversation: Conversation, start: float, end: float) -> int | None:
    middle = (start + end) / 2
    return next((t.speaker for t in conversation.turns if t.start <= middle < t.end), None)


def normalised(word: str) -> str:
    return re.sub(r"[^a-z]", "", word.lower())


def test_every_segment_and_word_has_one_of_the_speakers(labelled: Diarization) -> None:
    speakers = {s.speaker for s in labelled.speakers}

    assert labelled.segments
    assert all(segment.speaker in speakers for segment in labelled.segments)
    assert all(word.speaker == segment.speaker for segment in labelled.segments for word in segment.words)


def test_nine_words_in_ten_are_on_their_true_speaker(labelled: Diarization, change_mid_sentence: Conversation) -> None:
    words = [w for s in labelled.segments for w in s.words]
    pairs = [(true_speaker(change_mid_sentence, w.start, w.end), w.speaker) for w in words]
    votes: dict[int, dict[str, int]] = {}
    for truth, label in pairs:
        if truth is not None:
            votes.setdefault(truth, {}).setdefault(label, 0)
            votes[truth][label] += 1
    mapping = {truth: max(labels, key=labels.__getitem__) for truth, labels in votes.items()}

    right = sum(1 for truth, label in pairs if truth is not None and mapping[truth] == label)
    assert right / len(pairs) >= 0.9


def test_the_sentence_whose_speaker_changes_midway_is_split_between_the_halves(labelled: Diarization) -> None:
    segment_of = {normalised(w.word): s for s in labelled.segments for w in s.words}
    first, second = segment_of["thinking"], segment_of["station"]

    assert first.source_index == second.source_index, "tiny.en heard the sentence as one segment"
    assert first.speaker != second.speaker
    assert first.index != second.index
