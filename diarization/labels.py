"""The diarizer's labelled transcript in the wire types: `schemas.Segment`s and `schemas.SpeakerTime`s."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from diarizer import Diarization, LabelledSegment
from schemas import Segment, SpeakerTime, Word


def labelled_segments(result: Diarization, transcript: Sequence[Segment]) -> list[Segment]:
    """Every segment and word of `result` with its speaker, keeping the detail of the Whisper segment it came from.

    A Whisper segment split at a speaker change keeps its scores (log probability, no-speech probability,
    compression ratio, temperature) on every piece; its token ids stay only on a segment that was not split, since
    they cannot be divided between words.
    """
    sources = {segment.index: segment for segment in transcript}
    pieces = Counter(segment.source_index for segment in result.segments)
    return [_segment(piece, sources.get(piece.source_index), pieces[piece.source_index]) for piece in result.segments]


def _segment(piece: LabelledSegment, source: Segment | None, pieces: int) -> Segment:
    words = [
        Word(start=w.start, end=w.end, word=w.word, probability=w.probability, speaker=w.speaker) for w in piece.words
    ]
    return Segment(
        index=piece.index,
        start=piece.start,
        end=piece.end,
        text=piece.text,
        words=words,
        avg_logprob=source.avg_logprob if source else None,
        no_speech_prob=source.no_speech_prob if source else None,
        compression_ratio=source.compression_ratio if source else None,
        temperature=source.temperature if source else None,
        tokens=list(source.tokens) if source is not None and pieces == 1 else [],
        speaker=piece.speaker,
    )


def speaker_times(result: Diarization) -> list[SpeakerTime]:
    """The speakers of `result` with their speaking time (seconds) and number of turns, in label order."""
    return [SpeakerTime(speaker=s.speaker, speaking_time_s=s.speaking_time_s, turns=s.turns) for s in result.speakers]
