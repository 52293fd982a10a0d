"""The speaker-embedding model's interface: what diarization needs from it, so a stronger model can replace GE2E."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class SpeakerEncoder(Protocol):
    """Maps windows of speech to speaker embeddings: unit vectors whose cosine similarity is high for one voice.

    `diarizer.ge2e.Ge2eEncoder` is the implementation shipped; any other model with these members can be passed
    to `diarizer.Diarizer` instead.
    """

    @property
    def name(self) -> str:
        """Identifies the model in logs and results, e.g. `resemblyzer-ge2e-0.1.4`."""
        ...

    @property
    def window_samples(self) -> int:
        """Length of the audio window one embedding summarises, in samples at 16 kHz."""
        ...

    @property
    def dimension(self) -> int:
        """Length of an embedding."""
        ...

    def embed(
        self,
        samples: NDArray[np.float32],
        starts: NDArray[np.int64],
        progress: Callable[[int], None] | None = None,
    ) -> NDArray[np.float32]:
        """Embeddings of the windows `samples[s : s + window_samples]` for each `s` in `starts`.

        `samples` is the whole recording, 16 kHz mono float32 in [-1, 1]; a window reaching past its end is padded
        with silence. Returns a `(len(starts), dimension)` float32 array of unit vectors (a window with no voice at
        all may give the zero vector). `progress`, if given, is called with the number of windows done so far every
        few seconds of work; an exception it raises stops the work and propagates (that is how a caller cancels).
        """
        ...
