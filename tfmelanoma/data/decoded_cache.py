"""Decode once: a split's images (and masks) decoded and resized once, kept as memory-mapped .npy.

Decoding a JPEG costs milliseconds; gathering a row of a memory-mapped uint8 array costs
microseconds. The `grain` pipeline (`tfmelanoma.data.grain_pipeline`) reads batches from this
cache, so per step the CPU only gathers rows; the augmentations run in the compiled step
(`tfmelanoma.data.device_augment`).

Layout, one folder per (split fingerprint, stored size):

    <cache dir>/<fingerprint>-<size>px/
        image.npy      uint8 (N, size, size, 3), resized with `image_ops.resize_np`, rounded
        mask.npy       uint8 (N, size, size, 1) (segmentation only)
        meta.json      format, fingerprint, count, size, shapes: written last, the commit point
        .lock          one builder at a time (a second process waits, then finds it built)

A folder whose meta.json is missing, names another fingerprint, count or size, or whose arrays
do not have the recorded shapes (a truncated file) is rebuilt, never used. Arrays are written
under a unique temporary name and moved into place (`os.replace`), so a killed build leaves no
half-written array under a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from tfmelanoma.fsio import _temp_in, atomic_write_text, expand, folder_lock
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)

FORMAT = 1
FINGERPRINT_COLUMNS = ("dataset", "split", "position", "image_id", "sha256")
"""Index-frame columns that identify a split's examples (sha256: of the decoded pixels)."""


def frame_fingerprint(frame: pd.DataFrame, extra: str = "") -> str:
    """16 hex digits identifying a split's rows, in order (plus `extra`, e.g. a resize method).

    Args:
        frame: index frame (needs the columns of `FINGERPRINT_COLUMNS` it has).
        extra: anything else the stored pixels depend on.
    """
    columns = [c for c in FINGERPRINT_COLUMNS if c in frame.columns]
    digest = hashlib.sha256(f"{FORMAT}\0{extra}\0".encode())
    digest.update(frame[columns].astype(str).to_csv(index=False).encode())
    return digest.hexdigest()[:16]


def default_cache_dir(data_dir: str | None) -> Path:
    """`<TFDS data dir>/tfmelanoma_decoded` (the dir the split's rows refer to, else
    `$TFDS_DATA_DIR`, else ~/tensorflow_datasets): the cache lives beside the data it mirrors."""
    root = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return expand(root) / "tfmelanoma_decoded"


class DecodedCache:
    """The memory-mapped arrays of one built cache folder (read-only).

    Attributes:
        folder: the cache folder.
        arrays: field name ("image", "mask") -> uint8 memmap (N, size, size, C).
        size: stored square side.
    """

    def __init__(self, folder: Path, arrays: dict[str, np.ndarray], size: int):
        self.folder = folder
        self.arrays = arrays
        self.size = size

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    @property
    def images(self) -> np.ndarray:
        return self.arrays["image"]


def _open(folder: Path, fingerprint: str, count: int, size: int, fields) -> DecodedCache | None:
    """The cache in `folder` if it is complete and matches; else None (with the reason logged)."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        expected = {"format": FORMAT, "fingerprint": fingerprint, "count": count, "size": size}
        wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
        if wrong or sorted(meta.get("shapes", {})) != sorted(fields):
            logger.warning("decoded cache %s is stale (%s): rebuilding it", folder, wrong)
            return None
        arrays = {}
        for key in fields:
            array = np.load(folder / f"{key}.npy", mmap_mode="r")
            if list(array.shape) != meta["shapes"][key] or array.dtype != np.uint8:
                raise ValueError(f"{key}.npy has shape {array.shape}, meta.json says otherwise")
            arrays[key] = array
    except (OSError, ValueError, KeyError, TypeError) as e:  # truncated or garbled
        logger.warning("decoded cache %s is unreadable (%s): rebuilding it", folder, e)
        return None
    return DecodedCache(folder, arrays, size)


def _resize_u8(resize: Callable, array: np.ndarray, size: int) -> np.ndarray:
    out = resize(array, size)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def open_or_build(
    source: Sequence[dict],
    *,
    fingerprint: str,
    size: int,
    cache_dir: Path,
    fields: dict[str, Callable[[np.ndarray, int], np.ndarray]],
    keys: dict[str, str] | None = None,
    workers: int = 1,
    progress: bool = True,
) -> DecodedCache:
    """Opens the cache of `source` at `size`, building it first if it is absent or stale.

    Args:
        source: random-access example dicts (e.g. `SplitView.as_data_source()`), in cache order.
        fingerprint: identifies `source`'s rows (`frame_fingerprint`).
        size: stored square side in pixels.
        cache_dir: parent folder of the cache folders.
        fields: example key -> resize function `(array, size) -> float array` for that key
            (e.g. {"image": image_ops.resize_np}); results are rounded to uint8 and stored
            as `<key>.npy`.
        keys: cache field -> example key, where they differ ({"mask": "segmentation_mask"}).
        workers: threads decoding while building (decoding releases the GIL).
        progress: show a progress bar while building.

    Returns:
        The opened cache.
    """
    folder = Path(cache_dir) / f"{fingerprint}-{size}px"
    cache = _open(folder, fingerprint, len(source), size, fields)
    if cache is not None:
        return cache
    with folder_lock(folder, "decoded-image cache", wait=True, on_wait=logger.info):
        cache = _open(folder, fingerprint, len(source), size, fields)  # built while we waited
        if cache is None:
            _build(source, folder, fingerprint, size, fields, keys or {}, workers, progress)
            cache = _open(folder, fingerprint, len(source), size, fields)
    if cache is None:  # pragma: no cover - only if the disk lies
        raise OSError(f"{folder}: the decoded cache just built does not read back")
    return cache


def _build(source, folder: Path, fingerprint, size: int, fields, keys, workers: int, progress):
    from tqdm import tqdm

    (folder / "meta.json").unlink(missing_ok=True)  # not valid from here until rebuilt
    n = len(source)
    first = source[0]
    firsts = {
        k: _resize_u8(fn, np.asarray(first[keys.get(k, k)]), size) for k, fn in fields.items()
    }
    shapes = {k: [n, *a.shape] for k, a in firsts.items()}
    tmps = {k: _temp_in(folder / f"{k}.npy", ".tmp.npy") for k in fields}
    try:
        outs = {
            k: np.lib.format.open_memmap(tmps[k], mode="w+", dtype=np.uint8, shape=tuple(s))
            for k, s in shapes.items()
        }

        def one(i: int) -> None:
            if i == 0:
                for key, array in firsts.items():
                    outs[key][0] = array
                return
            example = source[i]
            for key, resize in fields.items():
                outs[key][i] = _resize_u8(resize, np.asarray(example[keys.get(key, key)]), size)

        with ThreadPoolExecutor(max(workers, 1), "decoded-cache") as pool:
            bar = tqdm(
                total=n, desc=f"decoding {n} examples once ({size} px)", disable=not progress
            )
            for _ in pool.map(one, range(n)):
                bar.update()
            bar.close()
        for key, out in outs.items():
            out.flush()
            with open(tmps[key], "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmps[key], folder / f"{key}.npy")
        outs.clear()
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
    meta = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "count": n,
        "size": size,
        "shapes": shapes,
    }
    atomic_write_text(folder / "meta.json", json.dumps(meta, indent=2))  # the commit point
    logger.info("decoded cache written: %s (%d examples, %d px)", folder, n, size)
