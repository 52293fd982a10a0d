"""Speaker diarization: who spoke when in a recording, and which speaker said each word of its transcript.

Imports only `schemas` and `jetscribe` (tests/foundation/test_architecture.py); its libraries come with the
`diarizer` extra, the speaker encoder's weights with requirements/weights.txt. No torch anywhere: the GE2E encoder
runs in numpy. Method, model, licence and limits: docs/diarization.md.

    from diarizer import Diarizer, SpeakerCount

    diarizer = Diarizer.load()                      # once per process: reads and digest-checks the weights
    result = diarizer.diarize(samples, segments, SpeakerCount(max_speakers=4), progress=..., cancelled=...)
    result.segments[0].speaker, result.segments[0].words[0].speaker, result.speakers, result.turns
"""

from diarizer.diarize import Diarizer
from diarizer.encoder import SpeakerEncoder
from diarizer.errors import DiarizationCancelledError, DiarizationInputError, DiarizerError, SpeakerCountError
from diarizer.ge2e import Ge2eEncoder
from diarizer.options import SpeakerCount
from diarizer.result import Diarization, LabelledSegment, LabelledWord, Speaker, SpeakerTurn

__all__ = [
    "Diarization",
    "DiarizationCancelledError",
    "DiarizationInputError",
    "Diarizer",
    "DiarizerError",
    "Ge2eEncoder",
    "LabelledSegment",
    "LabelledWord",
    "Speaker",
    "SpeakerCount",
    "SpeakerCountError",
    "SpeakerEncoder",
    "SpeakerTurn",
]
