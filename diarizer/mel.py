"""Mel power spectrogram frames as the GE2E speaker encoder was trained on them.

Resemblyzer 0.1.4 (`resemblyzer/audio.py`, `hparams.py`) feeds its encoder
`librosa.feature.melspectrogram(y, sr=16000, n_fft=400, hop_length=160, n_mels=40)`: a centred STFT of 25 ms
periodic-Hann windows every 10 ms (zero padding at both ends, librosa >= 0.10's default), power (|X|²) spectra, and
40 mel bands from 0 Hz to 8 kHz with Slaney's mel scale and area normalisation (librosa's `filters.mel` defaults).
No logarithm: the encoder takes mel power directly. Written here with numpy so the service needs no librosa.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE: Final = 16_000
N_FFT: Final = 400
"""25 ms at 16 kHz."""
HOP: Final = 160
"""10 ms at 16 kHz: one frame per 10 ms of audio."""
N_MELS: Final = 40
BLOCK_FRAMES: Final = 1000
"""Frames transformed at once (10 s of audio)."""

# Slaney's mel scale (librosa `hz_to_mel(htk=False)`): linear below 1 kHz, logarithmic above.
_F_SP: Final = 200.0 / 3
_MIN_LOG_HZ: Final = 1000.0
_MIN_LOG_MEL: Final = _MIN_LOG_HZ / _F_SP
_LOG_STEP: Final = np.log(6.4) / 27.0


def _hz_to_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
    linear = hz / _F_SP
    logarithmic = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, logarithmic, linear)


def _mel_to_hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    linear = mel * _F_SP
    logarithmic = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, logarithmic, linear)


@cache
def mel_filters() -> NDArray[np.float32]:
    """The (40, 201) matrix of triangular mel filters over the rFFT bins of a 400-point FFT at 16 kHz."""
    fft_hz = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


@cache
def _window() -> NDArray[np.float32]:
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)).astype(np.float32)


def mel_frames(samples: NDArray[np.float32]) -> NDArray[np.float32]:
    """The (1 + len(samples) // 160, 40) mel power frames of 16 kHz mono samples; frame k is centred on sample 160·k.

    Computed in blocks of `BLOCK_FRAMES`, so the windowed copies never exceed a few MB however long the audio.
    """
    padded = np.pad(samples.astype(np.float32, copy=False), N_FFT // 2)
    n_frames = 1 + len(samples) // HOP
    windows = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    out = np.empty((n_frames, N_MELS), dtype=np.float32)
    for first in range(0, n_frames, BLOCK_FRAMES):
        spectra = np.fft.rfft(windows[first : first + BLOCK_FRAMES] * _window(), axis=1)
        power = (spectra.real**2 + spectra.imag**2).astype(np.float32)
        out[first : first + BLOCK_FRAMES] = power @ mel_filters().T
    return out
