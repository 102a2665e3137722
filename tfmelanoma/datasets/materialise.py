"""Turning an index frame back into examples: tf.data pipelines and TF-free random access."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfmelanoma.data.image_ops import decode_np
from tfmelanoma.datasets import index as index_lib
from tfmelanoma.datasets import sampling
from tfmelanoma.datasets.access import get_builder, is_array_record

COMMON_KEYS: tuple[str, ...] = (
    "image", "image_id", "source", "label", "diagnosis", "harmonised_diagnosis", "patient_id",
    "lesion_id", "age", "sex", "anatomic_site", "image_type", "sha256", "phash",
)  # fmt: skip
"""Keys every materialised example carries (the common schema; segmentation masks are dropped)."""


class IndexedDataSource(Sequence):
    """Random access to the rows of an index frame, TF-free (`tfds.data_source` underneath).

    ``source[i]`` is the example dict of row ``i`` with the image decoded to uint8 (H, W, 3);
    text features are bytes, exactly as `tfds.data_source` returns them.
    """

    def __init__(self, frame: pd.DataFrame, data_dir: str | None):
        self._datasets = frame["dataset"].to_numpy()
        self._splits = frame["split"].to_numpy()
        self._positions = frame["position"].to_numpy(dtype=np.int64)
        self._data_dir = data_dir
        self._sources: dict[tuple[str, str], object] = {}

    def __len__(self) -> int:
        return len(self._positions)

    def _source(self, dataset: str, split: str):
        key = (dataset, split)
        if key not in self._sources:
            builder = get_builder(
                dataset, self._data_dir, file_format="array_record", prepare=False
            )
            # Images read encoded and decoded by `decode_np` (the pixel contract), not by
            # TFDS's NumPy decoder (OpenCV when installed, else Pillow without EXIF handling).
            decoders = index_lib._skip_decoding(builder)
            self._sources[key] = builder.as_data_source(split, decoders=decoders)
        return self._sources[key]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} examples")
        example = self._source(self._datasets[i], self._splits[i])[int(self._positions[i])]
        out = {k: example[k] for k in COMMON_KEYS}
        out["image"] = decode_np(bytes(out["image"]))
        return out


class SplitView:
    """One split of a combination: its index frame plus ways to read the examples.

    Attributes:
        frame: index frame (`tfmelanoma.datasets.index.INDEX_COLUMNS`).
        data_dir: TFDS data directory the rows refer to.
    """

    def __init__(self, frame: pd.DataFrame, data_dir: str | None, name: str = ""):
        # Sorted as `as_tf_dataset` reads (source by source, in position order), so element i of
        # the tf.data pipeline is row i of `frame`.
        order = pd.factorize(frame["dataset"].astype(str) + "\0" + frame["split"].astype(str))[0]
        self.frame = (
            frame.assign(_order=order)
            .sort_values(["_order", "position"], kind="stable")
            .drop(columns="_order")
            .reset_index(drop=True)
        )
        self.data_dir = data_dir
        self.name = name

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"SplitView({self.name!r}, {len(self)} examples)"

    @property
    def labels(self) -> np.ndarray:
        return self.frame["label"].to_numpy(dtype=np.int64)

    def _rows(self, oversample: bool, seed: int) -> pd.DataFrame:
        return sampling.oversample(self.frame, seed=seed) if oversample else self.frame

    def as_data_source(self, *, oversample: bool = False, seed: int = 0) -> IndexedDataSource:
        """TF-free random-access sequence of example dicts (needs ArrayRecord-prepared data).

        Args:
            oversample: repeat minority-class rows up to the majority count (seeded).
            seed: oversampling seed.
        """
        return IndexedDataSource(self._rows(oversample, seed), self.data_dir)

    def as_tf_dataset(self, *, oversample: bool = False, shuffle: bool = False, seed: int = 0):
        """A `tf.data.Dataset` of example dicts (images decoded uint8), one element per row.

        Rows are read source by source in position order; each example is repeated as many times
        as its row appears (oversampling) and skipped when absent.

        Args:
            oversample: repeat minority-class rows up to the majority count (seeded).
            shuffle: shuffle the whole split once per epoch (buffer = split size of 1,024 max).
            seed: oversampling and shuffling seed.
        """
        import tensorflow as tf

        rows = self._rows(oversample, seed)
        parts = []
        for (dataset, split), group in rows.groupby(["dataset", "split"], sort=False):
            builder = get_builder(dataset, self.data_dir, prepare=False)
            positions = group["position"].to_numpy(dtype=np.int64)
            if is_array_record(builder):
                parts.append(_array_record_dataset(builder, split, positions))
            else:
                parts.append(_tfrecord_dataset(builder, split, positions))
        if not parts:
            raise ValueError(f"split {self.name!r} is empty; nothing to read")
        out = parts[0]
        for ds in parts[1:]:
            out = out.concatenate(ds)
        out = out.apply(tf.data.experimental.assert_cardinality(len(rows)))
        if shuffle:
            out = out.shuffle(min(len(rows), 1024), seed=seed, reshuffle_each_iteration=True)
        return out


def _array_record_dataset(builder, split: str, positions: np.ndarray):
    """Random access through `as_data_source` (images still encoded), decoded in tf.data.

    TFDS offers no `as_dataset` for ArrayRecord files, so the records are read by position in a
    generator and the JPEG/PNG bytes are decoded in parallel (`tfmelanoma.data.image_ops.
    decode_tf`: accurate IDCT, the pixels PIL and browsers see; `exif=False`: records carry none).
    """
    import tensorflow as tf

    from tfmelanoma.data.image_ops import decode_tf

    features = builder.info.features
    # Masks (segmentation configs) are dropped, so they stay undecoded too.
    source = builder.as_data_source(split, decoders=index_lib._skip_decoding(builder))
    keys = [k for k in COMMON_KEYS if k != "image"]
    signature = {"image": tf.TensorSpec((), tf.string)}
    signature.update({k: tf.TensorSpec(features[k].shape, features[k].tf_dtype) for k in keys})

    def generate():
        for p in positions:
            ex = source[int(p)]
            yield {k: ex[k] for k in COMMON_KEYS}

    def decode(ex):
        ex = dict(ex)
        ex["image"] = decode_tf(ex["image"], exif=False)
        return ex

    ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _tfrecord_dataset(builder, split: str, positions: np.ndarray):
    """Sequential read of a TFRecord split; each record repeated as often as its position occurs.

    Images are read undecoded and decoded by `tfmelanoma.data.image_ops.decode_tf` (accurate
    IDCT, the pixels PIL and browsers see; `exif=False`: records carry none) rather than by
    TFDS's default fast-IDCT decoder.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from tfmelanoma.data.image_ops import decode_tf

    n = builder.info.splits[split].num_examples
    counts = tf.constant(np.bincount(positions, minlength=n), dtype=tf.int64)
    ds = builder.as_dataset(
        split=split,
        shuffle_files=False,
        read_config=index_lib.read_config(),
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    ds = ds.map(
        lambda ex: {
            k: decode_tf(ex[k], exif=False) if k == "image" else ex[k] for k in COMMON_KEYS
        },
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.enumerate().flat_map(lambda i, ex: tf.data.Dataset.from_tensors(ex).repeat(counts[i]))


def read_images(rows: pd.DataFrame, data_dir: str | None) -> dict[tuple[str, str, int], np.ndarray]:
    """Decoded images of index rows, by (dataset, split, position): uint8 RGB (H, W, 3).

    For the few rows de-duplication looks at (pixel checks, contact sheets): ArrayRecord data is
    read by position, a TFRecord split once up to its last wanted position (image bytes only).
    Decoded by `tfmelanoma.data.image_ops.decode_np`, as every NumPy path decodes.
    """
    out: dict[tuple[str, str, int], np.ndarray] = {}
    for (dataset, split), group in rows.groupby(["dataset", "split"], sort=False):
        builder = get_builder(dataset, data_dir, prepare=False)
        wanted = sorted({int(p) for p in group["position"]})
        decoders = index_lib._skip_decoding(builder)
        if is_array_record(builder):
            source = builder.as_data_source(split, decoders=decoders)
            for p in wanted:
                out[(dataset, split, p)] = decode_np(source[p]["image"])
            continue
        import tensorflow_datasets as tfds

        ds = builder.as_dataset(
            split=split,
            shuffle_files=False,
            decoders=decoders,
            read_config=index_lib.read_config(),
        ).map(lambda ex: ex["image"])
        want = set(wanted)
        for position, data in enumerate(tfds.as_numpy(ds.take(wanted[-1] + 1))):
            if position in want:
                out[(dataset, split, position)] = decode_np(data)
    return out
