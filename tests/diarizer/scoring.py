"""How wrong a diarization is: the share of true speech time put on the wrong speaker, after the best mapping of
labels (Hungarian assignment, scipy's `linear_sum_assignment`), scored every 10 ms. Speech given to no speaker
counts as wrong; non-speech given to a speaker does not count (the synthetic truth has exact speech times)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from scipy.optimize import linear_sum_assignment

from diarizer import SpeakerTurn
from tests.diarizer.conversations import Conversation

STEP_S: Final = 0.01


def wrong_speaker_share(conversation: Conversation, turns: Sequence[SpeakerTurn]) -> float:
    """0.0 (every 10 ms of speech on its speaker) … 1.0 (none)."""
    grid = np.arange(0.0, conversation.duration_s, STEP_S)
    truth = np.full(len(grid), -1)
    for turn in conversation.turns:
        truth[(grid >= turn.start) & (grid < turn.end)] = turn.speaker
    labels = sorted({turn.speaker for turn in turns})
    found = np.full(len(grid), -1)
    for turn in turns:
        found[(grid >= turn.start) & (grid < turn.end)] = labels.index(turn.speaker)
    speakers = sorted({turn.speaker for turn in conversation.turns})
    overlap = np.array([[np.sum((truth == s) & (found == f)) for f in range(len(labels))] for s in speakers])
    if overlap.size == 0:
        return 1.0
    rows, columns = linear_sum_assignment(-overlap)
    return 1.0 - float(overlap[rows, columns].sum()) / float(np.sum(truth >= 0))
