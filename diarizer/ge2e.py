"""The GE2E speaker encoder of resemblyzer 0.1.4, run in numpy.

Model: "Generalized End-to-End Loss for Speaker Verification" (Wan, Wang, Papir, Lopez Moreno, ICASSP 2018), as
trained and published by resemblyzer (`resemblyzer/voice_encoder.py`, Apache-2.0): 40-band mel power frames
(`diarizer.mel`) → 3 stacked LSTM layers of 256 units → the last layer's final hidden state → linear 256→256 → ReLU
→ L2 normalisation. An embedding summarises 160 frames (1.6 s, resemblyzer's `partials_n_frames`). Before the mel
features the audio is brought up to -30 dBFS (`audio_norm_target_dBFS`, increase only), as resemblyzer's
`preprocess_wav` does; the level is measured over the windows asked for, which is the speech, not the silences.

The LSTM follows torch's `nn.LSTM` equations (gates in the order input, forget, cell, output; both biases added).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from diarizer import mel
from diarizer.torch_pickle import read_legacy_torch
from diarizer.weights import verified_file
from jetscribe.errors import ModelError
from jetscribe.models.digests import SPEAKER_ENCODER_FILE

WINDOW_FRAMES: Final = 160
"""Mel frames per embedding: 1.6 s."""
LAYERS: Final = 3
HIDDEN: Final = 256
EMBEDDING: Final = 256
TARGET_DBFS: Final = -30.0
BATCH_WINDOWS: Final = 64
"""Windows run through the LSTM together: large enough for matrix products to pay, small enough that the
per-step activations (64 × 160 × 1024 float32, 42 MB) stay modest."""

_SHAPES: Final = {
    **{
        name: shape
        for layer in range(LAYERS)
        for name, shape in (
            (f"lstm.weight_ih_l{layer}", (4 * HIDDEN, mel.N_MELS if layer == 0 else HIDDEN)),
            (f"lstm.weight_hh_l{layer}", (4 * HIDDEN, HIDDEN)),
            (f"lstm.bias_ih_l{layer}", (4 * HIDDEN,)),
            (f"lstm.bias_hh_l{layer}", (4 * HIDDEN,)),
        )
    },
    "linear.weight": (EMBEDDING, HIDDEN),
    "linear.bias": (EMBEDDING,),
}


def _sigmoid(x: NDArray[np.float32]) -> NDArray[np.float32]:
    # tanh form: the same function, and no overflow in exp for large negative inputs.
    half: NDArray[np.float32] = np.tanh(np.float32(0.5) * x)
    return np.float32(0.5) * (np.float32(1.0) + half)


class _Layer:
    def __init__(self, state: Mapping[str, NDArray[np.float32]], index: int) -> None:
        self.w_ih_t = np.ascontiguousarray(state[f"lstm.weight_ih_l{index}"].T)
        self.w_hh_t = np.ascontiguousarray(state[f"lstm.weight_hh_l{index}"].T)
        self.bias = state[f"lstm.bias_ih_l{index}"] + state[f"lstm.bias_hh_l{index}"]

    def run(self, inputs: NDArray[np.float32], *, sequence: bool) -> NDArray[np.float32]:
        """(batch, steps, in) → (batch, steps, 256) hidden states, or only the last (batch, 256) if not `sequence`."""
        batch, steps, _ = inputs.shape
        projected = inputs @ self.w_ih_t + self.bias
        h = np.zeros((batch, HIDDEN), dtype=np.float32)
        c = np.zeros((batch, HIDDEN), dtype=np.float32)
        outputs = np.empty((batch, steps, HIDDEN), dtype=np.float32) if sequence else h
        for t in range(steps):
            gates = projected[:, t] + h @ self.w_hh_t
            i = _sigmoid(gates[:, :HIDDEN])
            f = _sigmoid(gates[:, HIDDEN : 2 * HIDDEN])
            g = np.tanh(gates[:, 2 * HIDDEN : 3 * HIDDEN])
            o = _sigmoid(gates[:, 3 * HIDDEN :])
            c = f * c + i * g
            h = o * np.tanh(c)
            if sequence:
                outputs[:, t] = h
        return outputs if sequence else h


class Ge2eEncoder:
    """resemblyzer's GE2E encoder in numpy; a `diarizer.encoder.SpeakerEncoder`."""

    name: Final = f"resemblyzer-ge2e-{SPEAKER_ENCODER_FILE.version}"
    window_samples: Final = WINDOW_FRAMES * mel.HOP
    dimension: Final = EMBEDDING

    def __init__(self, state: Mapping[str, NDArray[np.float32]]) -> None:
        """Build from a state dict with resemblyzer's parameter names; ModelError if a parameter is missing or
        has the wrong shape."""
        for key, shape in _SHAPES.items():
            value = state.get(key)
            if not isinstance(value, np.ndarray) or value.shape != shape:
                found = "missing" if value is None else getattr(value, "shape", type(value).__name__)
                raise ModelError(f"speaker encoder parameter {key} should have shape {shape}, it is {found}")
        weights = {key: state[key].astype(np.float32) for key in _SHAPES}
        self._layers = [_Layer(weights, index) for index in range(LAYERS)]
        self._linear_t = np.ascontiguousarray(weights["linear.weight"].T)
        self._linear_bias = weights["linear.bias"]

    @classmethod
    def load(cls, path: Path | None = None) -> Ge2eEncoder:
        """The encoder from `path` (default: `resemblyzer/pretrained.pt` in the installed package), after checking
        the file against its pinned SHA-256 (`jetscribe.models.digests.SPEAKER_ENCODER_FILE`).

        Raises ModelError when the package or file is missing, the digest differs, or the file cannot be read.
        """
        checkpoint: Any = read_legacy_torch(verified_file(SPEAKER_ENCODER_FILE, path))
        state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise ModelError("the speaker encoder checkpoint holds no `model_state` dict")
        return cls(state)

    def embed(
        self,
        samples: NDArray[np.float32],
        starts: NDArray[np.int64],
        progress: Callable[[int], None] | None = None,
    ) -> NDArray[np.float32]:
        """See `SpeakerEncoder.embed`; windows start on 10 ms frame boundaries (`starts` rounded down to them)."""
        if len(starts) == 0:
            return np.zeros((0, EMBEDDING), dtype=np.float32)
        first_frames = np.asarray(starts, dtype=np.int64) // mel.HOP
        end = int(first_frames.max()) * mel.HOP + self.window_samples
        audio = samples if end <= len(samples) else np.pad(samples, (0, end - len(samples)))
        frames = mel.mel_frames(audio) * np.float32(_gain(samples, first_frames * mel.HOP, self.window_samples) ** 2)
        windows = np.lib.stride_tricks.sliding_window_view(frames, WINDOW_FRAMES, axis=0)
        out = np.empty((len(first_frames), EMBEDDING), dtype=np.float32)
        for first in range(0, len(first_frames), BATCH_WINDOWS):
            batch = first_frames[first : first + BATCH_WINDOWS]
            out[first : first + len(batch)] = self._forward(np.ascontiguousarray(windows[batch].transpose(0, 2, 1)))
            if progress is not None:
                progress(first + len(batch))
        return out

    def _forward(self, frames: NDArray[np.float32]) -> NDArray[np.float32]:
        """(batch, 160, 40) mel frames → (batch, 256) unit embeddings (zero where the ReLU leaves nothing)."""
        hidden = frames
        for index, layer in enumerate(self._layers):
            hidden = layer.run(hidden, sequence=index < LAYERS - 1)
        raw = np.maximum(hidden @ self._linear_t + self._linear_bias, np.float32(0.0))
        norms: NDArray[np.float32] = np.linalg.norm(raw, axis=1, keepdims=True)
        unit: NDArray[np.float32] = (raw / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
        return unit


def _gain(samples: NDArray[np.float32], starts: NDArray[np.int64], length: int) -> float:
    """Amplitude factor bringing the windows' audio to -30 dBFS, never below 1 (resemblyzer: increase only)."""
    covered = np.zeros(len(samples) + 1, dtype=np.int32)
    np.add.at(covered, np.minimum(starts, len(samples)), 1)
    np.add.at(covered, np.minimum(starts + length, len(samples)), -1)
    mask = np.cumsum(covered[:-1]) > 0
    if not mask.any():
        return 1.0
    rms = float(np.sqrt(np.mean(np.square(samples[mask], dtype=np.float64))))
    if rms == 0.0:
        return 1.0
    return max(1.0, 10 ** (TARGET_DBFS / 20) / rms)
