"""What diarization gives back: speaker turns, the speakers with their speaking time, and the transcript labelled.

Plain dataclasses for now; the wire types (msgspec Structs in `schemas/`) are made from them where the stage joins
the pipeline. Times are seconds from the start of the audio. A speaker is a label `SPEAKER_00`, `SPEAKER_01`, …,
numbered in the order the speakers are first heard, and the same voice has the same label throughout one result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SPEAKER_LABEL: Final = "SPEAKER_{:02d}"


def speaker_label(index: int) -> str:
    """`SPEAKER_00` for 0: the label of the speaker heard `index`-th (from 0)."""
    return SPEAKER_LABEL.format(index)


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    """A stretch of speech by one speaker; turns are in time order and do not overlap."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True, slots=True)
class Speaker:
    speaker: str
    speaking_time_s: float
    """Total duration of the speaker's turns, in seconds."""
    turns: int


@dataclass(frozen=True, slots=True)
class LabelledWord:
    """A transcript word (`schemas.Word`) with the speaker whose turn it overlaps most (else the nearest turn)."""

    start: float
    end: float
    word: str
    probability: float
    speaker: str


@dataclass(frozen=True, slots=True)
class LabelledSegment:
    """A transcript segment spoken by one speaker.

    A Whisper segment in which the speaker changes between words comes back as several of these, split between
    the words, with `index` renumbered over the whole transcript; `source_index` is the `index` of the segment it
    came from.
    """

    index: int
    start: float
    end: float
    text: str
    speaker: str
    words: tuple[LabelledWord, ...]
    source_index: int


@dataclass(frozen=True, slots=True)
class Diarization:
    """Who spoke when in one recording."""

    speakers: tuple[Speaker, ...]
    """In label order (`SPEAKER_00` first)."""
    turns: tuple[SpeakerTurn, ...]
    segments: tuple[LabelledSegment, ...]
    """The transcript handed in, every segment and word with a speaker; empty when none was handed in."""
    model: str
    """The speaker encoder that made the embeddings, e.g. `resemblyzer-ge2e-0.1.4`."""
