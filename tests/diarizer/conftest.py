"""Diarization fixtures: the encoder loaded once, and the synthetic conversations built once per test run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from diarizer import Diarization, Diarizer
from tests.diarizer.conversations import SENTENCES, Conversation, Turn, converse, round_robin


@pytest.fixture(scope="session")
def diarizer() -> Diarizer:
    return Diarizer.load()


@pytest.fixture(scope="session")
def diarized(diarizer: Diarizer, request: pytest.FixtureRequest) -> Callable[[str], Diarization]:
    """The diarization, with default options, of the conversation fixture of that name; each made once."""
    done: dict[str, Diarization] = {}

    def get(name: str) -> Diarization:
        if name not in done:
            done[name] = diarizer.diarize(request.getfixturevalue(name).samples)
        return done[name]

    return get


@pytest.fixture(scope="session")
def two_speakers() -> Conversation:
    return converse(round_robin(2, 10, first_sentence=2))


@pytest.fixture(scope="session")
def three_speakers() -> Conversation:
    return converse(round_robin(3, 12, first_sentence=3))


@pytest.fixture(scope="session")
def four_speakers() -> Conversation:
    return converse(round_robin(4, 14, first_sentence=4))


@pytest.fixture(scope="session")
def back_to_back() -> Conversation:
    """Three voices, every turn starting the instant the previous one stops (one speech region for voice activity
    detection, as in a lively call), a one-word reply, and a voice heard in one short turn only."""
    return converse(
        [
            Turn(0, SENTENCES[0]),
            Turn(1, "Thanks. " + SENTENCES[4], pause_before_s=0),
            Turn(2, SENTENCES[6], pause_before_s=0),
            Turn(0, SENTENCES[8], pause_before_s=0),
            Turn(1, SENTENCES[10], pause_before_s=0),
        ]
    )


@pytest.fixture(scope="session")
def monologue() -> Conversation:
    return converse([Turn(2, sentence) for sentence in SENTENCES[:6]])


MID_SENTENCE_FIRST_HALF = "I was thinking that we could"
MID_SENTENCE_SECOND_HALF = "meet on Friday at the station near the old bridge."


@pytest.fixture(scope="session")
def change_mid_sentence() -> Conversation:
    """Three voices; in the sixth turn en+f3 starts a sentence and en+m7 finishes it without a pause."""
    return converse(
        [
            *round_robin(3, 5, first_sentence=1),
            Turn(1, MID_SENTENCE_FIRST_HALF),
            Turn(2, MID_SENTENCE_SECOND_HALF, pause_before_s=0),
            *round_robin(3, 5, first_sentence=8)[1:],
        ]
    )
