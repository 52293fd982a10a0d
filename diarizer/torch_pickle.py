"""Reading a checkpoint in torch's legacy serialisation (the pre-1.6 `torch.save` format) with pickle and numpy.

The format, as torch's own `torch/serialization.py` `_legacy_load` reads it: five pickles in a row — a magic number,
the protocol version (1001), a dict of system information (byte order, type sizes), the saved object, and the list
of storage keys — followed, for each key in that order, by an 8-byte little-endian element count and the storage's
raw little-endian elements. Inside the object pickle a tensor is a call of `torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, requires_grad, backward_hooks)` and a storage is a persistent id `("storage", <storage type>,
key, location, numel[, view_metadata])`.

The unpickler resolves only those three globals (and `collections.OrderedDict`): a file that names anything else
is refused, so reading an untrusted file cannot run code. Every tensor comes back as a numpy array that owns its
memory.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from jetscribe.errors import ModelError

MAGIC_NUMBER: Final = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION: Final = 1001
STORAGE_DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: np.dtype[Any]


@dataclass(frozen=True, slots=True)
class _StorageRef:
    key: str
    dtype: np.dtype[Any]
    numel: int


@dataclass(frozen=True, slots=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object, *_: object) -> _TensorRef:
    if not isinstance(storage, _StorageRef) or not isinstance(offset, int):
        raise pickle.UnpicklingError("a tensor whose storage is not a storage reference")
    if not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride):
        raise pickle.UnpicklingError("a tensor with a malformed size or stride")
    return _TensorRef(storage, offset, tuple(int(n) for n in size), tuple(int(n) for n in stride))


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a weights file has no reason to")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"malformed storage reference {pid!r:.80}")
        return _StorageRef(str(key), storage_type.dtype, numel)


def read_legacy_torch(path: Path) -> Any:
    """The object saved in `path` (nested dicts, lists and tuples as saved), each tensor a numpy array.

    Raises ModelError when the file is missing, truncated, not in this format, big-endian, or names
    anything but tensors, storages and ordered dicts.
    """
    try:
        with path.open("rb") as f:
            return _read(f, path)
    except OSError as exc:
        raise ModelError(f"cannot read the weights file {path}: {exc.strerror or exc}") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, struct.error) as exc:
        raise ModelError(
            f"{path} is not a readable torch checkpoint ({exc or type(exc).__name__}); "
            "reinstall the package that carries it (scripts/bootstrap)"
        ) from exc


def _read(f: IO[bytes], path: Path) -> Any:
    if _Unpickler(f).load() != MAGIC_NUMBER:
        raise ModelError(f"{path} is not a legacy torch checkpoint (wrong magic number)")
    if (version := _Unpickler(f).load()) != PROTOCOL_VERSION:
        raise ModelError(f"{path} uses torch serialisation protocol {version!r}, not {PROTOCOL_VERSION}")
    system = _Unpickler(f).load()
    if not isinstance(system, dict) or system.get("little_endian") is not True:
        raise ModelError(f"{path} was written on a big-endian machine, which this reader does not support")
    saved = _Unpickler(f).load()
    keys = _Unpickler(f).load()
    storages: dict[str, np.ndarray[Any, Any]] = {}
    refs = {ref.key: ref for ref in _storage_refs(saved)}
    for key in keys:
        (count,) = struct.unpack("<q", _read_exactly(f, 8, path))
        ref = refs.get(str(key))
        if ref is None:
            raise ModelError(f"{path}: storage {key} is stored but no tensor refers to it")
        if count < ref.numel:
            raise ModelError(f"{path}: storage {key} holds {count} elements, its tensors need {ref.numel}")
        storages[ref.key] = np.frombuffer(_read_exactly(f, count * ref.dtype.itemsize, path), dtype=ref.dtype)
    return _resolve(saved, storages, path)


def _read_exactly(f: IO[bytes], n: int, path: Path) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ModelError(f"{path} is truncated at byte {f.tell()}; reinstall the package that carries it")
    return data


def _storage_refs(node: object) -> list[_StorageRef]:
    if isinstance(node, _TensorRef):
        return [node.storage]
    if isinstance(node, dict):
        return [ref for value in node.values() for ref in _storage_refs(value)]
    if isinstance(node, list | tuple):
        return [ref for value in node for ref in _storage_refs(value)]
    return []


def _resolve(node: object, storages: dict[str, np.ndarray[Any, Any]], path: Path) -> Any:
    if isinstance(node, _TensorRef):
        return _tensor(node, storages, path)
    if isinstance(node, dict):
        return type(node)((key, _resolve(value, storages, path)) for key, value in node.items())
    if isinstance(node, list):
        return [_resolve(value, storages, path) for value in node]
    if isinstance(node, tuple):
        return tuple(_resolve(value, storages, path) for value in node)
    return node


def _tensor(ref: _TensorRef, storages: dict[str, np.ndarray[Any, Any]], path: Path) -> np.ndarray[Any, Any]:
    storage = storages.get(ref.storage.key)
    if storage is None:
        raise ModelError(f"{path}: storage {ref.storage.key} is referenced but not stored")
    if any(n < 0 for n in ref.size) or any(s < 0 for s in ref.stride) or ref.offset < 0:
        raise ModelError(f"{path}: a tensor has a negative size, stride or offset")
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True)) if all(ref.size) else 0
    if last >= len(storage) and all(ref.size):
        raise ModelError(f"{path}: a tensor reaches element {last} of a storage of {len(storage)}")
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[ref.offset :], shape=ref.size, strides=tuple(s * itemsize for s in ref.stride), writeable=False
    )
    return np.array(view)
