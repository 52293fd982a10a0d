"""Quantize a whisper.cpp GGML model into ggml's q8_0 or q5_0 block formats (`jetscribe models quantize`).

The file layout follows whisper.cpp's `examples/quantize` (`whisper_model_quantize`, which hands the
tensors to ggml's `ggml_common_quantize_0` in `examples/common-ggml.cpp`):

- the header, mel filterbank and vocabulary are copied unchanged, except the file type, which becomes
  `GGML_QNT_VERSION × GGML_QNT_VERSION_FACTOR + ftype` (2 × 1000 + 7 = 2007 for q8_0, 2008 for q5_0;
  the loader takes `ftype % 1000`);
- every 2-D f32/f16 tensor is quantized and takes the block type's id (8 for q8_0, 6 for q5_0), except
  `encoder.conv{1,2}.bias` and `encoder./decoder.positional_embedding`; everything else (1-D biases and
  norms, the 3-D conv weights) is copied as it is.

Each block of 32 consecutive values along a row is computed as ggml's reference quantizers
(`quantize_row_q8_0_ref`, `quantize_row_q5_0_ref` in `ggml-quants.c`) compute it, in float32 arithmetic
as the C code does, so the output is deterministic; the tests compare it byte for byte with the
`ggml_quantize_chunk` of the ggml that pywhispercpp ships.

- q8_0 (34 bytes per 32 values): `f16 d = amax / 127`, then 32 × `int8 round(x / d)` (half away from zero).
- q5_0 (22 bytes per 32 values): `f16 d = m / -16` where `m` is the value of largest magnitude (the first,
  on ties); each `q = min(31, trunc(x / d + 16.5))` is 5 bits: the low 4 bits of values `j` and `j + 16`
  share byte `j` of 16 (low nibble, high nibble), the fifth bits form a little-endian u32 (`bit k` = value
  `k`) stored between the scale and the nibbles.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from jetscribe.errors import ModelError
from jetscribe.models.digests import sha256_of
from jetscribe.models.files import (
    GGML_MAGIC,
    GGML_QNT_VERSION,
    GGML_QNT_VERSION_FACTOR,
    check_model_file,
    ftype_name,
)

BLOCK_VALUES: Final = 32
"""QK8_0 and QK5_0: values per block."""
CHUNK_VALUES: Final = 1 << 20
"""Values quantized at a time, so a large tensor needs no more than a few tens of MB at once."""
SKIPPED: Final = frozenset(
    {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding", "decoder.positional_embedding"}
)
"""Tensors whisper.cpp's quantize tool keeps in their original type (its `to_skip` list)."""

_F32: Final = 0
_F16: Final = 1

Floats = npt.NDArray[np.float32]


def _quantize_q8_0(values: Floats) -> bytes:
    blocks = values.reshape(-1, BLOCK_VALUES)
    d = np.abs(blocks).max(axis=1) / np.float32(127)
    inverse = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    scaled = (blocks * inverse[:, None]).astype(np.float64)
    # C's roundf: halves away from zero (numpy's round goes to even).
    rounded = np.copysign(np.floor(np.abs(scaled) + 0.5), scaled)
    out = np.empty(len(blocks), dtype=[("d", "<f2"), ("qs", "i1", BLOCK_VALUES)])
    out["d"] = d
    out["qs"] = rounded.astype(np.int8)
    return out.tobytes()


def _quantize_q5_0(values: Floats) -> bytes:
    blocks = values.reshape(-1, BLOCK_VALUES)
    magnitudes = np.abs(blocks)
    rows = np.arange(len(blocks))
    largest = blocks[rows, magnitudes.argmax(axis=1)]
    # An all-zero block keeps C's starting `max = 0.0f`, whose d is -0.0 (a -0.0 in the data must not win).
    largest = np.where(magnitudes.max(axis=1) > 0, largest, np.float32(0))
    d = largest / np.float32(-16)
    inverse = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    shifted = blocks * inverse[:, None] + np.float32(16.5)
    q = np.minimum(np.trunc(shifted), 31).astype(np.uint8)
    half = BLOCK_VALUES // 2
    high_bits = ((q >> 4).astype(np.uint32) << np.arange(BLOCK_VALUES, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    out = np.empty(len(blocks), dtype=[("d", "<f2"), ("qh", "<u4"), ("qs", "u1", half)])
    out["d"] = d
    out["qh"] = high_bits
    out["qs"] = (q[:, :half] & 0x0F) | ((q[:, half:] & 0x0F) << 4)
    return out.tobytes()


@dataclass(frozen=True, slots=True)
class QuantType:
    """One ggml quantization: its names and numbers in ggml.h, and the block function."""

    name: str
    ftype: int
    """`GGML_FTYPE_MOSTLY_*`: what the file header says."""
    ggml_type: int
    """`GGML_TYPE_*`: what each quantized tensor's header says."""
    quantize: Callable[[Floats], bytes]


QUANT_TYPES: Final = {
    "q8_0": QuantType("q8_0", ftype=7, ggml_type=8, quantize=_quantize_q8_0),
    "q5_0": QuantType("q5_0", ftype=8, ggml_type=6, quantize=_quantize_q5_0),
}


def quant_type(name: str) -> QuantType:
    """The QuantType called `name`; ModelError naming the supported ones otherwise."""
    try:
        return QUANT_TYPES[name]
    except KeyError:
        raise ModelError(f"cannot quantize to {name!r}: supported types are {', '.join(QUANT_TYPES)}") from None


def quantize_block_data(values: Floats, qtype: QuantType) -> bytes:
    """`values` (float32, a multiple of 32 long, row-major) as consecutive blocks of `qtype`."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return b"".join(qtype.quantize(flat[start : start + CHUNK_VALUES]) for start in range(0, len(flat), CHUNK_VALUES))


def quantized_path(source: Path, qtype: str) -> Path:
    """Where the `qtype` quantization of `source` goes: `ggml-base.bin` → `ggml-base-q5_0.bin` beside it."""
    return source.with_name(f"{source.name.removesuffix('.bin')}-{qtype}.bin")


def digest_path(path: Path) -> Path:
    """The `sha256sum`-format file recording the digest of `path`: `path` + `.sha256`."""
    return path.with_name(f"{path.name}.sha256")


def quantize_model(source: Path, dest: Path, qtype_name: str) -> Path:
    """Write the `qtype_name` quantization of the f16/f32 GGML model `source` to `dest`, atomically.

    The result is checked with `check_model_file`, and its SHA-256 written to `dest.sha256`
    (`sha256sum -c` reads it). Raises ModelError for an unknown type, a missing or damaged source,
    a source that is already quantized, or a tensor whose rows are not whole blocks.
    """
    qtype = quant_type(qtype_name)
    check_model_file(source)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with source.open("rb") as src, tmp.open("wb") as out:
            _copy_header(src, out, source, qtype)
            while header := src.read(12):
                if len(header) < 12:
                    raise ModelError(f"{source} ends inside a tensor header")
                _quantize_tensor(src, out, header, qtype)
            out.flush()
            os.fsync(out.fileno())
        check_model_file(tmp)
        digest = sha256_of([tmp])
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    digest_path(dest).write_text(f"{digest}  {dest.name}\n")
    return dest


def _read(src: BinaryIO, n: int) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise ModelError(f"{src.name} ended early at byte {src.tell()}")
    return data


def _copy_header(src: BinaryIO, out: BinaryIO, source: Path, qtype: QuantType) -> None:
    magic, *hparams = struct.unpack("<I11i", _read(src, 48))
    if magic != GGML_MAGIC:
        raise ModelError(f"{source} is not a whisper.cpp GGML model (wrong magic number)")
    ftype = hparams[10] % GGML_QNT_VERSION_FACTOR
    if ftype not in (_F32, _F16):
        raise ModelError(
            f"{source} is already quantized ({ftype_name(ftype)}): quantize the f16 model it came from, "
            "as re-quantizing compounds the rounding errors"
        )
    hparams[10] = GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + qtype.ftype
    out.write(struct.pack("<I11i", magic, *hparams))
    n_mel, n_fft = struct.unpack("<2i", _read(src, 8))
    out.write(struct.pack("<2i", n_mel, n_fft))
    out.write(_read(src, n_mel * n_fft * 4))
    raw_count = _read(src, 4)
    out.write(raw_count)
    for _ in range(struct.unpack("<i", raw_count)[0]):
        raw_length = _read(src, 4)
        out.write(raw_length)
        out.write(_read(src, struct.unpack("<i", raw_length)[0]))


def _quantize_tensor(src: BinaryIO, out: BinaryIO, header: bytes, qtype: QuantType) -> None:
    n_dims, name_length, ttype = struct.unpack("<3i", header)
    raw_dims = _read(src, 4 * n_dims)
    dims = struct.unpack(f"<{n_dims}i", raw_dims)
    raw_name = _read(src, name_length)
    name = raw_name.decode("utf-8", errors="replace")
    if ttype not in (_F32, _F16):
        raise ModelError(
            f"tensor {name} of {src.name} has ggml type {ttype}, not f32 (0) or f16 (1): the model is already quantized"
        )
    count = int(np.prod(dims))
    dtype = np.dtype("<f4" if ttype == _F32 else "<f2")
    data = _read(src, count * dtype.itemsize)
    if n_dims != 2 or name in SKIPPED:
        out.write(header + raw_dims + raw_name + data)
        return
    if dims[0] % BLOCK_VALUES:
        raise ModelError(
            f"tensor {name} has rows of {dims[0]} values, not a multiple of {BLOCK_VALUES}: it cannot be quantized"
        )
    values = np.frombuffer(data, dtype=dtype).astype(np.float32)
    out.write(struct.pack("<3i", n_dims, name_length, qtype.ggml_type) + raw_dims + raw_name)
    out.write(quantize_block_data(values, qtype))
