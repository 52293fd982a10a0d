"""A finished transcript rendered as plain text, SubRip (SRT), WebVTT or JSON."""

from __future__ import annotations

from typing import Final, Literal, get_args

from schemas import Segment, encode

TranscriptFormat = Literal["txt", "srt", "vtt", "json"]
FORMATS: Final[tuple[str, ...]] = get_args(TranscriptFormat)
CONTENT_TYPES: Final[dict[str, str]] = {
    "txt": "text/plain",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "json": "application/json",
}


def timestamp(seconds: float, separator: str) -> str:
    """`HH:MM:SS<sep>mmm`, rounded to the millisecond (SRT uses `,`, WebVTT `.`)."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_txt(segments: list[Segment]) -> str:
    return "".join(f"{s.text.strip()}\n" for s in segments)


def to_srt(segments: list[Segment]) -> str:
    cues = [
        f"{n}\n{timestamp(s.start, ',')} --> {timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for n, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(segments: list[Segment]) -> str:
    cues = [f"{timestamp(s.start, '.')} --> {timestamp(s.end, '.')}\n{s.text.strip()}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def render(segments: list[Segment], fmt: TranscriptFormat) -> bytes:
    """The transcript in `fmt`, as the bytes of the response body (UTF-8)."""
    if fmt == "json":
        return encode(segments)
    renderers = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt}
    return renderers[fmt](segments).encode()
