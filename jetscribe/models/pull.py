"""Downloading `ggml-NAME.bin` from the whisper.cpp model repository (`jetscribe models pull`).

The file is written to `ggml-NAME.bin.part` beside its final place. An interrupted download
leaves that file behind and the next pull resumes it with an HTTP Range request; a server that
ignores Range answers 200 and the download starts over. Only a complete file that passes
`check_model_file` and matches its pinned SHA-256 (`GGML_SHA256`, or the digest the caller gives)
is renamed into place, so a model directory never holds half a model or an unverified one.
"""

from __future__ import annotations

import http.client
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Final, TextIO

from jetscribe.errors import ModelError
from jetscribe.models.digests import GGML_SHA256, verify_sha256
from jetscribe.models.files import check_model_file, model_file

CHUNK_BYTES: Final = 1 << 20
TIMEOUT_S: Final = 30.0
"""Per socket operation: a server silent for this long counts as a network failure."""
PROGRESS_INTERVAL_S: Final = 0.25
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CONTENT_RANGE: Final = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_RANGE_NOT_SATISFIABLE: Final = 416


def pull_model(
    name: str, models_dir: Path, base_url: str, *, sha256: str | None = None, progress: TextIO | None = None
) -> Path:
    """Download `{base_url}/ggml-{name}.bin` into `models_dir` and return its path.

    The file must match `sha256` (hex) when given, else the pin of `name` in `GGML_SHA256`; a name
    with neither is refused before anything is downloaded. Resumes a `.part` file left by an
    earlier attempt. A progress bar goes to `progress` (default: standard error). Raises ModelError
    on HTTP and network errors, on a download that is not a whisper.cpp model, and on a digest mismatch.
    """
    if not _NAME.match(name):
        raise ModelError(f"{name!r} is not a model name: use letters, digits, '.', '-' and '_' (e.g. base.en)")
    expected = sha256 or GGML_SHA256.get(name)
    if expected is None:
        raise ModelError(
            f"model {name!r} has no pinned SHA-256 in this release: pass the digest its publisher gives "
            f"(`jetscribe models pull {name} --sha256 HEX`); pinned models: {', '.join(sorted(GGML_SHA256))}"
        )
    url = f"{base_url.rstrip('/')}/ggml-{name}.bin"
    dest = model_file(models_dir, name)
    part = dest.with_name(dest.name + ".part")
    models_dir.mkdir(parents=True, exist_ok=True)
    bar = _ProgressBar(dest.name, sys.stderr if progress is None else progress)
    try:
        _download(url, name, part, bar)
    except _RangeRejectedError:
        part.unlink()
        _download(url, name, part, bar)
    try:
        check_model_file(part)
        verify_sha256([part], expected, what=f"the download of {url}")
    except ModelError as exc:
        part.unlink()
        raise ModelError(f"{url} did not give the expected whisper.cpp model, so it was discarded: {exc}") from exc
    part.replace(dest)
    return dest


class _RangeRejectedError(ModelError):
    """The server cannot serve the rest of the partial file (416): start over."""


def _download(url: str, name: str, part: Path, bar: _ProgressBar) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            start, total = _span(response, offset)
            with part.open("r+b" if start else "wb") as out:
                out.seek(start)
                out.truncate()
                written = _copy(response, out, start, total, bar)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == _RANGE_NOT_SATISFIABLE and offset:
            raise _RangeRejectedError from exc
        if exc.code == 404:
            raise ModelError(
                f"no model {name} at {url} (HTTP 404): check the name and JETSCRIBE_MODEL_BASE_URL"
            ) from exc
        raise ModelError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        kept = part.stat().st_size if part.exists() else 0
        raise ModelError(
            f"downloading {url} failed: {reason!s} ({kept} bytes kept in {part}; run the pull again to resume)"
        ) from exc
    if total is not None and written != total:
        raise ModelError(
            f"download of {url} ended at {written} of {total} bytes; run the pull again to resume from {part}"
        )


def _span(response: http.client.HTTPResponse, offset: int) -> tuple[int, int | None]:
    """Where the body starts in the file, and the file's full size if the server says."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != offset:
            raise http.client.HTTPException(
                f"the server answered the range request from byte {offset} with "
                f"Content-Range {response.headers.get('Content-Range')!r}"
            )
        return offset, None if match.group(3) == "*" else int(match.group(3))
    return 0, int(length) if length is not None else None


def _copy(response: http.client.HTTPResponse, out: BinaryIO, written: int, total: int | None, bar: _ProgressBar) -> int:
    bar.update(written, total)
    while chunk := response.read(CHUNK_BYTES):
        out.write(chunk)
        written += len(chunk)
        bar.update(written, total)
    bar.finish(written, total)
    return written


class _ProgressBar:
    """A one-line text progress bar, redrawn at most every PROGRESS_INTERVAL_S seconds."""

    WIDTH: Final = 30

    def __init__(self, label: str, stream: TextIO) -> None:
        self._label = label
        self._stream = stream
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._first_byte: int | None = None

    def update(self, done: int, total: int | None) -> None:
        if self._first_byte is None:
            self._first_byte = done
        now = time.monotonic()
        if now - self._drawn_at >= PROGRESS_INTERVAL_S:
            self._drawn_at = now
            self._draw(done, total, end="\r")

    def finish(self, done: int, total: int | None) -> None:
        self._draw(done, total, end="\n")

    def _draw(self, done: int, total: int | None, end: str) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = (done - (self._first_byte or 0)) / elapsed / 1e6
        if total:
            fraction = min(done / total, 1.0)
            filled = int(fraction * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            line = f"{self._label} [{bar}] {fraction:4.0%} {done / 1e6:.1f}/{total / 1e6:.1f} MB {rate:.1f} MB/s"
        else:
            line = f"{self._label} {done / 1e6:.1f} MB {rate:.1f} MB/s"
        self._stream.write(line + end)
        self._stream.flush()
