"""Errors of speaker diarization.

JetscribeError (jetscribe.errors)
├── ModelError                  the speaker encoder's weights are missing, fail their digest or cannot be read
└── DiarizerError
    ├── SpeakerCountError       num_speakers / min_speakers / max_speakers are out of range or contradict each other
    ├── DiarizationInputError   the audio or transcript handed over is not what diarization takes
    └── DiarizationCancelledError  the caller's cancel check asked to stop

Model problems stay `jetscribe.errors.ModelError`, the error every model loader raises. Exceptions of numpy,
scikit-learn and spectralcluster are translated where clustering runs (`diarizer.clustering`).
"""

from __future__ import annotations

from jetscribe.errors import JetscribeError


class DiarizerError(JetscribeError):
    """Base of every error diarization raises on purpose."""


class SpeakerCountError(DiarizerError):
    """The requested number of speakers is out of range, or its bounds contradict each other."""


class DiarizationInputError(DiarizerError):
    """The samples are not 16 kHz mono float32 in range, or a segment or word has impossible times."""


class DiarizationCancelledError(DiarizerError):
    """Diarization stopped because the caller's cancel check returned True."""
