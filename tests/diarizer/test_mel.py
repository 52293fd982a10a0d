"""Mel power frames as GE2E was trained on: 40 Slaney bands, 25 ms windows every 10 ms, 16 kHz."""

from __future__ import annotations

import numpy as np

from diarizer import mel


def test_one_frame_per_10_ms_centred_on_it() -> None:
    assert mel.mel_frames(np.zeros(16_000, dtype=np.float32)).shape == (101, 40)


def test_the_filters_are_40_triangles_over_0_to_8_khz() -> None:
    filters = mel.mel_filters()

    assert filters.shape == (40, 201)
    assert (filters >= 0).all()
    assert all(np.count_nonzero(np.diff(np.sign(np.diff(row[row > 0])))) <= 1 for row in filters)


def test_a_tone_lands_in_the_band_around_its_frequency() -> None:
    t = np.arange(16_000) / 16_000
    frames = mel.mel_frames((0.5 * np.sin(2 * np.pi * 1_000 * t)).astype(np.float32))
    band = int(np.argmax(frames[50]))

    assert int(np.argmax(mel.mel_filters()[:, 25])) == band


def test_long_audio_is_transformed_in_blocks_to_the_same_frames() -> None:
    samples = np.random.default_rng(1).normal(scale=0.1, size=16_000 * 25).astype(np.float32)
    centre = 1234 * mel.HOP
    alone = mel.mel_frames(samples[centre - 2 * mel.HOP : centre + 2 * mel.HOP])[2]

    np.testing.assert_allclose(mel.mel_frames(samples)[1234], alone, rtol=1e-4)
