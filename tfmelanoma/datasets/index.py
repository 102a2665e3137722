"""Index tables: one row per example of a prepared TFDS dataset, read without decoding images.

De-duplication and splitting work on these tables (strings and hashes only); images are decoded
only when a split is materialised (`tfmelanoma.datasets.combination`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from tfmelanoma.datasets import dedup
from tfmelanoma.datasets.access import get_builder, is_array_record
from tfmelanoma.fsio import atomic_write_text
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)

INDEX_COLUMNS: tuple[str, ...] = (
    "dataset",  # TFDS name as requested, e.g. "isic2017" or "isic_archive/resized_512"
    "split",  # the dataset's own split name ("train", "validation", "test")
    "position",  # record index in that split (random access / tf.data enumerate order)
    "image_id",
    "isic_id",  # normalised ISIC id or ""
    "source",
    "label",  # 0 non_melanoma / 1 melanoma
    "harmonised_diagnosis",  # index into tfmelanoma.labels.HARMONISED_CLASSES
    "diagnosis",
    "patient_id",
    "lesion_id",
    "age",  # years; -1 unknown (the example schema's `UNKNOWN_AGE`)
    "image_type",
    "sha256",
    "phash",
    "height",
    "width",
)
"""Columns of every index frame."""

ROLE_NAMES = {"train": "train", "validation": "validation", "valid": "validation",
              "val": "validation", "test": "test"}  # fmt: skip
"""Builder split name -> role. Splits with other names are not used by combinations."""

_TEXT = ("image_id", "source", "diagnosis", "patient_id", "lesion_id", "image_type", "sha256",
         "phash")  # fmt: skip


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):  # tf.data numpy scalars
        value = value.item()
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    return "" if value is None else str(value)


def _image_size(image) -> tuple[int, int]:
    """(height, width) of an encoded image (header only) or a decoded array."""
    if isinstance(image, np.ndarray) and image.ndim == 3:
        return int(image.shape[0]), int(image.shape[1])
    data = image.item() if isinstance(image, np.ndarray) else image
    try:
        with Image.open(io.BytesIO(data)) as img:
            return int(img.height), int(img.width)
    except Exception:  # noqa: BLE001 - a size is report-only; never fail the index on it
        return -1, -1


def frame_from_examples(dataset: str, split: str, examples: Iterable[Mapping]) -> pd.DataFrame:
    """Builds an index frame from example dicts of the common schema.

    Args:
        dataset: dataset name to record.
        split: split name to record.
        examples: dicts with the schema keys; ``image`` may be encoded bytes or a uint8 array;
            ``label``/``harmonised_diagnosis`` may be ints or class names.

    Returns:
        DataFrame with `INDEX_COLUMNS`.
    """
    from tfmelanoma import labels

    rows = []
    for position, ex in enumerate(examples):
        row = {"dataset": dataset, "split": split, "position": position}
        for key in _TEXT:
            row[key] = _text(ex.get(key, ""))
        label = ex["label"]
        row["label"] = labels.BINARY_CLASSES.index(label) if isinstance(label, str) else int(label)
        harmonised = ex["harmonised_diagnosis"]
        row["harmonised_diagnosis"] = (
            labels.HARMONISED_CLASSES.index(harmonised)
            if isinstance(harmonised, str)
            else int(harmonised)
        )
        row["age"] = int(ex.get("age", -1))
        row["height"], row["width"] = _image_size(ex["image"]) if "image" in ex else (-1, -1)
        rows.append(row)
    return _finish(pd.DataFrame(rows, columns=[c for c in INDEX_COLUMNS if c != "isic_id"]))


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    frame["isic_id"] = frame["image_id"].map(dedup.normalise_isic_id)
    for col in ("position", "label", "harmonised_diagnosis", "age", "height", "width"):
        frame[col] = frame[col].astype(np.int64)
    for col in ("dataset", "split", "isic_id", *_TEXT):
        frame[col] = frame[col].astype(object)
    return frame[list(INDEX_COLUMNS)].reset_index(drop=True)


def split_roles(builder) -> dict[str, str]:
    """Maps each usable split of a builder to its role: {"train": "train", "test": "test", ...}."""
    roles = {}
    for split in builder.info.splits:
        role = ROLE_NAMES.get(split)
        if role is None:
            logger.info("%s: split %r is not train/validation/test; not used", builder.name, split)
        elif role in roles.values():
            raise ValueError(f"{builder.name}: two splits map to role {role!r}: {sorted(roles)}")
        else:
            roles[split] = role
    return roles


_INDEX_KEYS = ("image", "label", "harmonised_diagnosis", "age", *_TEXT)
_BATCH = 512


def _skip_decoding(builder) -> dict:
    """SkipDecoding for every image-like feature (image and, in segmentation configs, the mask)."""
    import tensorflow_datasets as tfds

    return {
        k: tfds.decode.SkipDecoding()
        for k, f in builder.info.features.items()
        if isinstance(f, tfds.features.Image)
    }


def iter_undecoded(builder, split: str):
    """Yields example dicts of one split with the image left encoded, in position order.

    Records are read in batches (ArrayRecord: `__getitems__`; TFRecord: `tf.data` batches of
    scalars), which is several times faster than one record per call.
    """
    import tensorflow_datasets as tfds

    decoders = _skip_decoding(builder)
    if is_array_record(builder):
        source = builder.as_data_source(split, decoders=decoders)
        for start in range(0, len(source), _BATCH):
            yield from source.__getitems__(list(range(start, min(start + _BATCH, len(source)))))
        return
    ds = builder.as_dataset(
        split=split, shuffle_files=False, decoders=decoders, read_config=read_config()
    )
    keys = [k for k in _INDEX_KEYS if k in builder.info.features]
    ds = ds.map(lambda ex: {k: ex[k] for k in keys}).batch(_BATCH)
    for batch in tfds.as_numpy(ds):
        n = len(batch["label"])
        for i in range(n):
            yield {k: v[i] for k, v in batch.items()}


def read_config():
    """Sequential reading, so positions agree between the index and `as_tf_dataset`."""
    import tensorflow_datasets as tfds

    return tfds.ReadConfig(interleave_cycle_length=1, shuffle_seed=None)


def read_index(
    name: str, data_dir: str | None, splits: Iterable[str] | None = None, *, cache: bool = True
) -> pd.DataFrame:
    """Reads the index of a prepared dataset without decoding its images.

    Args:
        name: TFDS name, optionally with config/version (``"isic_archive/resized_512"``).
        data_dir: TFDS data directory.
        splits: split names to read; None reads every train/validation/test split.
        cache: reuse / write ``tfmelanoma_index/<split>.v2.csv`` inside the prepared dataset's
            version folder. The cache is keyed by a hash of the dataset's ``dataset_info.json``,
            so re-preparing the dataset invalidates it; an unwritable folder just skips caching.

    Returns:
        Index frame (`INDEX_COLUMNS`), rows in (split, position) order.
    """
    builder = get_builder(name, data_dir, prepare=False)
    roles = split_roles(builder)
    wanted = list(roles) if splits is None else list(splits)
    frames = []
    for split in wanted:
        if split not in builder.info.splits:
            raise ValueError(f"{name}: no split {split!r}; available: {list(builder.info.splits)}")
        frame = _cached(builder, split) if cache else None
        if frame is None:
            frame = frame_from_examples(name, split, iter_undecoded(builder, split))
            if cache:
                _store(builder, split, frame)
        frames.append(frame.assign(dataset=name))
    if not frames:
        return _finish(pd.DataFrame(columns=[c for c in INDEX_COLUMNS if c != "isic_id"]))
    return pd.concat(frames, ignore_index=True)


_CACHE_VERSION = "v2"  # bump when INDEX_COLUMNS or their meaning change


def _fingerprint(builder) -> str:
    import hashlib

    info = Path(str(builder.data_dir)) / "dataset_info.json"
    return hashlib.sha256(info.read_bytes()).hexdigest()[:16] if info.is_file() else ""


def _cache_path(builder, split: str) -> Path:
    return Path(str(builder.data_dir)) / "tfmelanoma_index" / f"{split}.{_CACHE_VERSION}.csv"


def _cached(builder, split: str) -> pd.DataFrame | None:
    path = _cache_path(builder, split)
    key = _fingerprint(builder)
    if not key or not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as e:
        logger.warning("ignoring unreadable index cache %s (%s)", path, e)
        return None
    if frame.empty or frame.columns[-1] != "fingerprint" or frame["fingerprint"].iloc[0] != key:
        return None
    if len(frame) != builder.info.splits[split].num_examples:
        return None
    return _finish(frame.drop(columns=["fingerprint", "isic_id"]))


def _store(builder, split: str, frame: pd.DataFrame) -> None:
    key = _fingerprint(builder)
    if not key:
        return
    path = _cache_path(builder, split)
    try:
        path.parent.mkdir(exist_ok=True)
        # atomic, unique temporary name: a concurrent reader or writer never sees half a file
        atomic_write_text(path, frame.assign(fingerprint=key).to_csv(index=False))
    except OSError as e:
        logger.info("index cache not written to %s (%s)", path, e)
