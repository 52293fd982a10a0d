"""What `jetscribe transcribe` works on: inputs (files, folders walked recursively, URLs) and where each result goes.

A result goes next to its input as `<stem>.<format>` (`talk.mp3` → `talk.srt`), or under `--out`, where
a folder's inputs keep their place relative to the folder. A file with a sibling of the same stem
(`talk.mp3` beside `talk.wav`) keeps its whole name instead (`talk.mp3.srt`), whichever of them a run
names, as do inputs that would otherwise share a result. A URL's result is named after the last part
of its path, under `--out` or the current folder.
"""

from __future__ import annotations

import glob
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

MEDIA_SUFFIXES: Final = frozenset(
    ".aac .aif .aiff .amr .au .caf .flac .m4a .m4b .mka .mkv .mov .mp2 .mp3 .mp4 .mpeg .mpga .oga .ogg .opus .wav "
    ".weba .webm .wma .wmv .3gp .avi".split()
)
"""Audio and video files a folder walk picks up (a file named on the command line is sent whatever its name)."""
URL_SCHEMES: Final = ("http://", "https://")
UNSAFE_NAME: Final = re.compile(r"[^\w.-]+")


@dataclass(frozen=True, slots=True)
class Target:
    """One input and the file its transcript is written to."""

    source: Path | str
    """A local file, or an http(s) URL."""
    output: Path
    label: str
    """How progress and the summary name it."""

    @property
    def is_url(self) -> bool:
        return isinstance(self.source, str)


class InputError(Exception):
    """An input that is neither a file, a folder nor an http(s) URL."""


def plan(inputs: list[str], fmt: str, out: Path | None) -> list[Target]:
    """Every target, in the order given (a folder's files sorted); each source once."""
    found: list[tuple[Path | str, Path, str]] = []  # source, output without its suffix, label
    seen: set[Path | str] = set()
    for raw in inputs:
        for source, stem_path, label in _expand(raw, out):
            key = source if isinstance(source, str) else source.resolve()
            if key not in seen:
                seen.add(key)
                found.append((source, stem_path, label))
    shared = Counter(stem for _, stem, _ in found)
    targets = []
    for source, stem, label in found:
        if shared[stem] > 1 or (isinstance(source, Path) and _has_namesake(source)):
            whole = Path(source).name if isinstance(source, Path) else _url_name(source, keep_suffix=True)
            output = stem.with_name(f"{whole}.{fmt}")
        else:
            output = stem.with_name(f"{stem.name}.{fmt}")
        targets.append(Target(source, output, label))
    return targets


def _expand(raw: str, out: Path | None) -> list[tuple[Path | str, Path, str]]:
    if raw.startswith(URL_SCHEMES):
        return [(raw, (out or Path.cwd()) / _url_name(raw, keep_suffix=False), raw)]
    path = Path(raw)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if _is_media(p, path))
        return [(f, _stem_path(f, f.relative_to(path).parent, out), str(f)) for f in files]
    if path.is_file():
        return [(path, _stem_path(path, Path(), out), str(path))]
    if "://" in raw:
        raise InputError(f"{raw}: only http and https URLs can be transcribed")
    raise InputError(f"{raw}: no such file or folder")


def _has_namesake(path: Path) -> bool:
    """Whether another audio or video file beside `path` has its stem (`talk.mp3` beside `talk.wav`)."""
    return any(
        other != path and other.stem == path.stem and other.suffix.lower() in MEDIA_SUFFIXES
        for other in path.parent.glob(f"{glob.escape(path.stem)}.*")
    )


def _is_media(path: Path, root: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return path.is_file() and not hidden and path.suffix.lower() in MEDIA_SUFFIXES


def _stem_path(source: Path, relative_dir: Path, out: Path | None) -> Path:
    folder = source.parent if out is None else out / relative_dir
    return folder / source.stem


def _url_name(url: str, *, keep_suffix: bool) -> str:
    last = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2]) or "download"
    name = last if keep_suffix else Path(last).stem or last
    return UNSAFE_NAME.sub("_", name)
