"""A finished transcript rendered as plain text, SubRip (SRT), WebVTT, TSV or JSON.

Subtitles (SRT, WebVTT) are cues: one per segment, or, with `CueLayout` limits, cut at word boundaries so that a
cue lasts at most `max_cue_s` and its lines hold at most `max_line_chars` characters (two lines per cue, the usual
subtitle rule; a longer stretch starts a new cue). Segments without text make no cue. WebVTT cue text is escaped
(`&`, `<`, `>` as character references, W3C WebVTT §4.2.2: a bare `<` opens a tag, and `-->` would end the cue
text's line as a timing line). TSV is whisper.cpp's and OpenAI Whisper's `tsv` writer: a `start end text` header,
times in integer milliseconds, tabs and line breaks in the text turned into spaces.

A diarized transcript (segments with a `speaker`) shows who speaks: a WebVTT cue opens with a voice span
`<v SPEAKER_00>` (W3C WebVTT §4.2.2, "cue voice span"), an SRT cue with `[SPEAKER_00] ` (SRT has no voice tag),
plain text gives one paragraph per turn (consecutive segments of one speaker) as `SPEAKER_00: text`, TSV gains a
`speaker` column, JSON carries the `speaker` fields of segments and words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from schemas import Segment, Word, encode

TranscriptFormat = Literal["txt", "srt", "vtt", "tsv", "json"]
FORMATS: Final[tuple[str, ...]] = get_args(TranscriptFormat)
CONTENT_TYPES: Final[dict[str, str]] = {
    "txt": "text/plain",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "tsv": "text/tab-separated-values",
    "json": "application/json",
}
LINES_PER_CUE: Final = 2
MIN_LINE_CHARS: Final = 10
MAX_LINE_CHARS: Final = 200
MIN_CUE_S: Final = 1.0
MAX_CUE_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class CueLayout:
    """Limits of subtitle cues (query parameters of `GET /jobs/{id}/transcript`); None: no limit."""

    max_line_chars: int | None = None
    """Characters per line (10–200); 42 is a common broadcast rule."""
    max_cue_s: float | None = None
    """Seconds a cue may last (1–60)."""


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    lines: list[str]
    speaker: str | None = None


def timestamp(seconds: float, separator: str) -> str:
    """`HH:MM:SS<sep>mmm`, rounded to the millisecond (SRT uses `,`, WebVTT `.`)."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _one_line(text: str) -> str:
    """`text` on one line: a blank line would end a cue, a tab or line break would split a TSV row."""
    return " ".join(text.split())


def _joiner(segment: Segment) -> str:
    """How the segment's words join: with spaces, or (a language written without them) directly."""
    return " " if " " in segment.text.strip() or len(segment.words) < 2 else ""


def _wrap(text_words: list[str], joiner: str, width: int | None) -> list[str]:
    """Greedy line filling: words never split, a word longer than `width` gets a line of its own."""
    if width is None:
        return [joiner.join(text_words)] if text_words else []
    lines: list[str] = []
    for word in text_words:
        if lines and len(lines[-1]) + len(joiner) + len(word) <= width:
            lines[-1] = f"{lines[-1]}{joiner}{word}"
        else:
            lines.append(word)
    return lines


def _split(segment: Segment, words: list[Word], layout: CueLayout) -> list[Cue]:
    joiner = _joiner(segment)
    cues: list[Cue] = []
    group: list[Word] = []
    for word in words:
        candidate = [*group, word]
        too_long = layout.max_cue_s is not None and word.end - candidate[0].start > layout.max_cue_s
        too_many = len(_wrap([w.word for w in candidate], joiner, layout.max_line_chars)) > LINES_PER_CUE
        if group and (too_long or too_many):
            cues.append(
                Cue(group[0].start, group[-1].end, _wrap([w.word for w in group], joiner, layout.max_line_chars))
            )
            group = [word]
        else:
            group = candidate
    if group:
        cues.append(Cue(group[0].start, group[-1].end, _wrap([w.word for w in group], joiner, layout.max_line_chars)))
    # The segment's own bounds hold the first and last cue (words may start after it begins).
    cues[0] = Cue(segment.start, cues[0].end, cues[0].lines)
    cues[-1] = Cue(cues[-1].start, max(cues[-1].start, segment.end), cues[-1].lines)
    return [Cue(c.start, c.end, c.lines, segment.speaker) for c in cues]


def cues(segments: list[Segment], layout: CueLayout = CueLayout()) -> list[Cue]:
    """The subtitle cues of `segments` under `layout`; segments without text make none."""
    found: list[Cue] = []
    for segment in segments:
        text = _one_line(segment.text)
        if not text:
            continue
        words = [w for w in segment.words if w.word.strip()]
        if words and (layout.max_cue_s is not None or layout.max_line_chars is not None):
            found.extend(
                _split(segment, [Word(w.start, w.end, _one_line(w.word), w.probability) for w in words], layout)
            )
        else:
            lines = _wrap(text.split(" "), " ", layout.max_line_chars)
            found.append(Cue(segment.start, segment.end, lines, segment.speaker))
    return found


def escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_txt(segments: list[Segment]) -> str:
    """One line per segment; with speakers, one line per turn, `SPEAKER_00: text`."""
    spoken = [(s.speaker, text) for s in segments if (text := s.text.strip())]
    if not any(speaker for speaker, _ in spoken):
        return "".join(f"{text}\n" for _, text in spoken)
    turns: list[tuple[str | None, list[str]]] = []
    for speaker, text in spoken:
        if turns and turns[-1][0] == speaker:
            turns[-1][1].append(text)
        else:
            turns.append((speaker, [text]))
    return "".join(f"{speaker}: {' '.join(texts)}\n" if speaker else f"{' '.join(texts)}\n" for speaker, texts in turns)


def _srt_lines(cue: Cue) -> list[str]:
    if cue.speaker is None or not cue.lines:
        return cue.lines
    return [f"[{cue.speaker}] {cue.lines[0]}", *cue.lines[1:]]


def _vtt_lines(cue: Cue) -> list[str]:
    lines = [escape_vtt(line) for line in cue.lines]
    if cue.speaker is None or not lines:
        return lines
    return [f"<v {escape_vtt(cue.speaker)}>{lines[0]}", *lines[1:]]


def to_srt(segments: list[Segment], layout: CueLayout = CueLayout()) -> str:
    blocks = [
        f"{n}\n{timestamp(c.start, ',')} --> {timestamp(c.end, ',')}\n" + "".join(f"{line}\n" for line in _srt_lines(c))
        for n, c in enumerate(cues(segments, layout), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(segments: list[Segment], layout: CueLayout = CueLayout()) -> str:
    blocks = [
        f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n" + "".join(f"{line}\n" for line in _vtt_lines(c))
        for c in cues(segments, layout)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_tsv(segments: list[Segment]) -> str:
    """whisper.cpp's columns; a diarized transcript has a `speaker` column before `text`."""
    spoken = [(s, text) for s in segments if (text := _one_line(s.text))]
    if not any(s.speaker for s, _ in spoken):
        rows = [f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t{text}\n" for s, text in spoken]
        return "start\tend\ttext\n" + "".join(rows)
    rows = [f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t{s.speaker or ''}\t{text}\n" for s, text in spoken]
    return "start\tend\tspeaker\ttext\n" + "".join(rows)


def render(segments: list[Segment], fmt: TranscriptFormat, layout: CueLayout = CueLayout()) -> bytes:
    """The transcript in `fmt`, as the bytes of the response body (UTF-8); `layout` shapes SRT and WebVTT cues."""
    if fmt == "json":
        return encode(segments)
    if fmt == "srt":
        return to_srt(segments, layout).encode()
    if fmt == "vtt":
        return to_vtt(segments, layout).encode()
    if fmt == "tsv":
        return to_tsv(segments).encode()
    return to_txt(segments).encode()
