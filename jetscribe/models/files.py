"""Model files on disk: where a named model lives, and a structural check of a whisper.cpp GGML file.

Nothing here needs numpy, so `jetscribe models pull` runs in the gateway image too.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Final

from jetscribe.errors import ModelError

GGML_MAGIC: Final = 0x67676D6C
GGML_QNT_VERSION: Final = 2
"""ggml.h: the quantization format version a quantized file's header carries in its file type."""
GGML_QNT_VERSION_FACTOR: Final = 1000
"""ggml.h: header file type = ftype + GGML_QNT_VERSION × this, so a loader takes `ftype % 1000`."""
FTYPE_NAMES: Final = {
    0: "f32",
    1: "f16",
    2: "q4_0",
    3: "q4_1",
    4: "q4_1_some_f16",
    7: "q8_0",
    8: "q5_0",
    9: "q5_1",
    10: "q2_k",
    11: "q3_k",
    12: "q4_k",
    13: "q5_k",
    14: "q6_k",
    15: "iq2_xxs",
    16: "iq2_xs",
    17: "iq3_xxs",
    18: "iq1_s",
    19: "iq4_nl",
    20: "iq3_s",
    21: "iq2_s",
    22: "iq4_xs",
    23: "iq1_m",
    24: "bf16",
}
"""ggml.h's `enum ggml_ftype` (GGML_FTYPE_ALL_F32, GGML_FTYPE_MOSTLY_F16, …), lower-cased as in model file names."""


def model_file(models_dir: Path, name: str) -> Path:
    """The path a model named `name` has in `models_dir`."""
    return models_dir / f"ggml-{name}.bin"


def ftype_name(ftype: int) -> str:
    """The name of a GGML file type (the header's value, with or without the quantization version)."""
    ftype %= GGML_QNT_VERSION_FACTOR
    return FTYPE_NAMES.get(ftype, f"ftype {ftype}")


def model_quantization(path: Path) -> str:
    """How the weights of the GGML model at `path` are stored, from its header: "f16", "q8_0", "q5_0", …

    Raises ModelError when the file is missing or is not a GGML model.
    """
    try:
        with path.open("rb") as f:
            header = f.read(48)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from exc
    if len(header) < 48 or struct.unpack_from("<I", header)[0] != GGML_MAGIC:
        raise ModelError(f"{path} is not a whisper.cpp GGML model (wrong magic number); re-import or re-pull it")
    return ftype_name(struct.unpack_from("<i", header, 44)[0])


def check_model_file(path: Path) -> None:
    """Raise ModelError unless `path` looks like a complete whisper.cpp GGML model."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    verify_ggml(path)


# Bytes per block and elements per block of the ggml tensor types whisper.cpp model files use.
_TYPE_SIZES: Final = {0: (4, 1), 1: (2, 1), 2: (18, 32), 3: (20, 32), 6: (22, 32), 7: (24, 32), 8: (34, 32)}


def verify_ggml(path: Path) -> None:
    """Walk a GGML model file's structure without loading it; raise ModelError if it is damaged.

    pywhispercpp loads a file cut short without complaint and crashes at the first inference,
    so a worker checks the whole layout before it loads a model.
    """
    size = path.stat().st_size
    with path.open("rb") as f:

        def read(fmt: str) -> tuple[int, ...]:
            n = struct.calcsize(fmt)
            data = f.read(n)
            if len(data) != n:
                raise ModelError(f"{path} is truncated at byte {f.tell()} of {size}; re-import or re-pull it")
            return struct.unpack(fmt, data)

        if read("<I")[0] != GGML_MAGIC:
            raise ModelError(f"{path} is not a whisper.cpp GGML model (wrong magic number); re-import or re-pull it")
        hparams = read("<11i")
        n_mel, n_fft = read("<2i")
        f.seek(n_mel * n_fft * 4, os.SEEK_CUR)
        (n_vocab,) = read("<i")
        for _ in range(n_vocab):
            (length,) = read("<i")
            f.seek(length, os.SEEK_CUR)
        expected = 7 + 15 * hparams[4] + 4 + 24 * hparams[8]
        tensors = 0
        while f.tell() < size:
            n_dims, name_len, ttype = read("<3i")
            dims = read(f"<{n_dims}i")
            f.seek(name_len, os.SEEK_CUR)
            if ttype not in _TYPE_SIZES:
                return  # a type this check cannot size: the layout so far was sound
            block_bytes, block_elems = _TYPE_SIZES[ttype]
            elements = math.prod(dims)
            f.seek(elements // block_elems * block_bytes, os.SEEK_CUR)
            tensors += 1
        if f.tell() != size or tensors < expected:
            raise ModelError(
                f"{path} is truncated: {tensors} of {expected} tensors are complete; re-import or re-pull it"
            )
