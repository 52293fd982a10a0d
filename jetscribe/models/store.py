"""Where GGML models live and how a configured model name becomes a loadable file.

A model named `NAME` is the file `ggml-NAME.bin` in the models directory. If it is missing and
a PyPI package carrying that model in CTranslate2 format is installed, it is imported (converted)
on first use, so a machine that reaches only package registries still gets a working model.
Every import is checked against a pinned SHA-256 first (`jetscribe.models.digests`). A quantized
model `NAME-q8_0` / `NAME-q5_0` missing from the directory is quantized from `NAME` the same way.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from jetscribe.errors import ModelError
from jetscribe.models import ct2, ggml
from jetscribe.models.digests import PACKAGED_MODELS, PackagedModel, sha256_of, verify_sha256
from jetscribe.models.files import check_model_file, model_file
from jetscribe.models.quantize import QUANT_TYPES, quant_type, quantize_model, quantized_path


def import_model(src: str | Path, dest: Path, *, sha256: str | None = None) -> Path:
    """Convert the CTranslate2 Whisper model at `src` (directory, file or package) into `dest`.

    The weights (`model.bin`, or its parts concatenated) must match a pinned SHA-256: the pin of a
    packaged model (`PACKAGED_MODELS`), or `sha256` for any other source. Raises ModelError when the
    source is not a model, has no pin, or does not match it.
    """
    source = ct2.locate(src)
    packaged = packaged_model_of(src)
    expected = sha256 or (packaged.weights_sha256 if packaged else None)
    if expected is None:
        raise ModelError(
            f"{src} is not a packaged model with a pinned digest: pass the SHA-256 of its weights to trust it "
            f"(`jetscribe models import {src} --sha256 {sha256_of(source.weight_parts)}` if that is the digest its "
            "publisher gives)"
        )
    verify_sha256(source.weight_parts, expected, what=f"the weights of {src}")
    if packaged is not None and sha256 is None:
        verify_sha256([source.vocabulary], packaged.vocabulary_sha256, what=f"the vocabulary of {src}")
    ggml.write_ggml(ct2.read(source), dest)
    return dest


def quantize_stored_model(name: str, models_dir: Path, qtype: str, *, output_name: str | None = None) -> Path:
    """Quantize the model `name` of `models_dir` to `qtype`, beside it as `NAME-QTYPE` (or `output_name`).

    Raises ModelError for an unknown type, a model not in the directory, or one already quantized.
    """
    quant_type(qtype)
    source = model_file(models_dir, name)
    if not source.is_file():
        raise ModelError(
            f"model {name!r} is not in {models_dir}, so there is nothing to quantize: import it "
            "(`jetscribe models import SRC`) or pull it (`jetscribe models pull NAME`) first"
        )
    dest = model_file(models_dir, output_name) if output_name else quantized_path(source, qtype)
    return quantize_model(source, dest, qtype)


def packaged_model_of(src: str | Path) -> PackagedModel | None:
    """The packaged model whose package (import or distribution name) `src` is, if any."""
    key = str(src).replace("-", "_")
    return next((packaged for packaged in PACKAGED_MODELS.values() if key in packaged.packages), None)


def installed_package(name: str) -> str | None:
    """The installed package that carries model `name` (the first of its parts), if all of them are installed."""
    packaged = PACKAGED_MODELS.get(name)
    if packaged is None or any(importlib.util.find_spec(p) is None for p in packaged.packages):
        return None
    return packaged.packages[0]


def resolve_model(name: str, models_dir: Path, explicit_path: Path | None = None) -> Path:
    """The GGML file to load: `explicit_path`, else `models_dir/ggml-NAME.bin`, imported if need be."""
    if explicit_path is not None:
        check_model_file(explicit_path)
        return explicit_path
    path = model_file(models_dir, name)
    if path.exists():
        check_model_file(path)
        return path
    package = installed_package(name)
    if package is not None:
        return import_model(package, path)
    source_name, _, qtype = name.rpartition("-")
    if qtype in QUANT_TYPES and (model_file(models_dir, source_name).exists() or installed_package(source_name)):
        return quantize_model(resolve_model(source_name, models_dir), path, qtype)
    hint = f"`pip install {' '.join(PACKAGED_MODELS[name].distributions)}` or " if name in PACKAGED_MODELS else ""
    raise ModelError(
        f"model {name!r} is not in {models_dir}: {hint}run `jetscribe models pull {name}`, "
        "or set WHISPER_MODEL_PATH to a GGML file"
    )


def list_models(models_dir: Path) -> list[tuple[str, Path, int]]:
    """(name, path, size in bytes) of every model in `models_dir`."""
    if not models_dir.is_dir():
        return []
    return [
        (p.name.removeprefix("ggml-").removesuffix(".bin"), p, p.stat().st_size)
        for p in sorted(models_dir.glob("ggml-*.bin"))
    ]


def name_for_source(src: str | Path) -> str:
    """A model name for `src`: the known name of a packaged model, else the source's own name."""
    key = str(src).replace("-", "_")
    for name, packaged in PACKAGED_MODELS.items():
        if key in packaged.packages:
            return name
    return Path(src).name.removesuffix(".bin") or "imported"
