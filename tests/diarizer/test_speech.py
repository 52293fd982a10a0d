"""Speech regions from the level of the samples."""

from __future__ import annotations

import numpy as np

from diarizer.speech import speech_regions
from tests.diarizer.conversations import Conversation


def test_each_turn_of_a_conversation_is_a_region_within_50_ms(two_speakers: Conversation) -> None:
    regions = speech_regions(two_speakers.samples)

    assert len(regions) == len(two_speakers.turns)
    for region, turn in zip(regions, two_speakers.turns, strict=True):
        assert abs(region.start - turn.start) <= 0.05
        assert abs(region.end - turn.end) <= 0.05


def test_silence_has_no_speech() -> None:
    assert speech_regions(np.zeros(16_000 * 3, dtype=np.float32)) == []


def test_faint_noise_has_no_speech() -> None:
    noise = np.random.default_rng(0).normal(scale=10 ** (-70 / 20), size=16_000 * 3).astype(np.float32)

    assert speech_regions(noise) == []


def test_audio_shorter_than_a_frame_is_handled() -> None:
    assert speech_regions(np.full(100, 0.5, dtype=np.float32)) == []
