"""The last guard against a repetition loop: Whisper's compression-ratio test, and where to cut the loop."""

from __future__ import annotations

import numpy as np

from jetscribe.stage.decode import downmix
from worker.quality import compression_ratio, loop_cut


def test_ordinary_text_compresses_little() -> None:
    assert compression_ratio("The children are playing in the garden.") < 1.5


def test_a_loop_compresses_past_whispers_threshold() -> None:
    assert compression_ratio("殲1，" * 70) > 2.4


def test_a_loop_is_cut_after_its_first_copy() -> None:
    tokens = [1, 2, 3] + [7, 8] * 70

    assert loop_cut(tokens) == 5


def test_text_without_three_copies_in_a_row_is_not_cut() -> None:
    assert loop_cut([1, 2, 1, 2, 3, 4, 5]) is None


def test_a_plain_stereo_mix_is_the_mean_of_the_channels() -> None:
    left = np.sin(np.linspace(0, 100, 1600, dtype=np.float32))
    frames = np.stack([left, left * 0.5], axis=1)

    assert np.allclose(downmix(frames), left * 0.75)


def test_channels_in_opposite_phase_keep_the_louder_channel() -> None:
    left = np.sin(np.linspace(0, 100, 1600, dtype=np.float32))
    frames = np.stack([left, -left], axis=1)

    assert np.allclose(downmix(frames), left)
