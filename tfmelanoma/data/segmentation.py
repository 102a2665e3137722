"""The segmentation input pipeline on tf.data: (image, mask) batches from a `SegmentationSplit`.

Yields `(image float32 RGB [0, 255] (B, S, S, 3), mask float32 {0, 1} (B, S, S, 1))`, the model
contract's input plus a binary target. Pixels go through `tfmelanoma.data.image_ops` (JPEG with
the accurate IDCT, the same as the NumPy twin `segmentation_numpy` and the builders' Pillow);
masks through `tfmelanoma.data.masks.read_mask` (files) or the builder's stored 0/255 PNG.

Training batches are a pure function of (seed, position in the endless shuffled stream), as in
the classification pipeline: a resumed run skips the examples already seen and continues with the
batches an uninterrupted run would have drawn.
"""

from __future__ import annotations

import tensorflow as tf

from tfmelanoma.data import image_ops
from tfmelanoma.data.masks import read_mask
from tfmelanoma.data.segmentation_sources import MASK_KEY, Pairs, SegmentationSplit
from tfmelanoma.models.segmentation.colour_space import convert_colour

AUTOTUNE = tf.data.AUTOTUNE


def decode_image(path) -> tf.Tensor:
    """Reads an image file as uint8 RGB (H, W, 3), by `image_ops.decode_tf` (accurate IDCT)."""
    return image_ops.decode_tf(tf.io.read_file(path))


def decode_mask(path) -> tf.Tensor:
    """Reads a mask file as float32 {0, 1} (H, W, 1), by `tfmelanoma.data.masks.read_mask`.

    Through `tf.numpy_function`, so the tf.data and NumPy pipelines and the builders share one
    decoder (Pillow: BMP, TIFF and 0/1 masks included); sizes are checked by `folder_pairs`.
    """
    mask = tf.numpy_function(lambda p: read_mask(p.decode()), [path], tf.uint8, stateful=False)
    return tf.cast(tf.ensure_shape(mask, [None, None]), tf.float32)[..., None]


def resize_pair(image, mask, size: int):
    """Resizes an image (bilinear, antialiased, float32 [0, 255]) and its mask (nearest)."""
    return image_ops.resize_antialiased_tf(image, size), image_ops.resize_mask_tf(mask, size)


def augment_pair(image, mask, seed, size: int | None = None, crop_fraction: float = 0.8):
    """Joint random flips, 90-degree rotation and crop, identical for image and mask.

    The image and mask are stacked into one 4-channel tensor so every geometric op sees the same
    random draw; stateless ops with an explicit seed make the result reproducible.

    Args:
        image: float32 (H, W, 3).
        mask: float32 (H, W, 1).
        seed: int tensor of shape (2,).
        size: output size (defaults to the input height); crops are resized back to it.
        crop_fraction: the crop side as a fraction of the input side, drawn in [crop_fraction, 1].

    Returns:
        `(image, mask)`, the mask still binary.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    stacked = tf.concat([tf.cast(image, tf.float32), tf.cast(mask, tf.float32)], axis=-1)
    stacked = tf.image.stateless_random_flip_left_right(stacked, seeds[0])
    stacked = tf.image.stateless_random_flip_up_down(stacked, seeds[1])
    k = tf.random.stateless_uniform([], seeds[2], minval=0, maxval=4, dtype=tf.int32)
    stacked = tf.image.rot90(stacked, k)
    height, width = tf.shape(stacked)[0], tf.shape(stacked)[1]
    out = size or image.shape[0] or tf.shape(image)[0]
    fraction = tf.random.stateless_uniform([], seeds[3], minval=crop_fraction, maxval=1.0)
    side = tf.cast(tf.cast(tf.minimum(height, width), tf.float32) * fraction, tf.int32)
    stacked = tf.image.stateless_random_crop(stacked, [side, side, 4], seeds[3])
    return image_ops.resize_tf(stacked[..., :3], out), image_ops.resize_mask_tf(
        stacked[..., 3:], out
    )


def pairs_dataset(pairs: Pairs) -> tf.data.Dataset:
    """(image uint8 (H, W, 3), mask float32 {0, 1} (H, W, 1)) of folder pairs, in their order."""
    ds = tf.data.Dataset.from_tensor_slices((pairs.image_paths, pairs.mask_paths))
    return ds.map(lambda i, m: (decode_image(i), decode_mask(m)), num_parallel_calls=AUTOTUNE)


def _builder_dataset(split: SegmentationSplit) -> tf.data.Dataset:
    """The kept rows of a prepared builder split (TFRecord) as (image, mask), in row order."""
    import tensorflow_datasets as tfds  # noqa: PLC0415  (heavy; only needed on this path)

    builder = tfds.builder(split.builder, data_dir=split.data_dir)
    if str(getattr(builder.info.file_format, "value", "")) == "array_record":
        raise ValueError(
            f"TFDS dataset {split.builder!r} in {builder.data_dir} is ArrayRecord, which tf.data "
            "cannot read; use data.pipeline=numpy (auto does) or prepare it as tfrecord"
        )
    ds = builder.as_dataset(split=split.split, shuffle_files=False)
    ds = _keep_rows(ds, split, builder.info.splits[split.split].num_examples)
    return ds.map(
        lambda ex: (ex["image"], tf.cast(ex[MASK_KEY] > 127, tf.float32)),
        num_parallel_calls=AUTOTUNE,
    )


def _keep_rows(ds: tf.data.Dataset, split: SegmentationSplit, n: int) -> tf.data.Dataset:
    if len(split.rows) == n:
        return ds
    keep = [False] * n
    for r in split.rows:
        keep[r] = True
    keep = tf.constant(keep)
    ds = ds.enumerate().filter(lambda i, _: tf.gather(keep, i))
    return ds.map(lambda _, ex: ex).take(len(split.rows))


def as_tf_dataset(split: SegmentationSplit) -> tf.data.Dataset:
    """(image, mask {0, 1}) at the source's size, in the split's row order."""
    if split.pairs is not None:
        return pairs_dataset(split.pairs.subset(split.rows))
    return _builder_dataset(split)


def image_ids(split: SegmentationSplit) -> list[str]:
    """The split's `image_id`s in its order (only ids are decoded: a quick pass)."""
    if split.pairs is not None:
        return list(split.pairs.subset(split.rows).image_ids)
    import tensorflow_datasets as tfds  # noqa: PLC0415

    builder = tfds.builder(split.builder, data_dir=split.data_dir)
    skip = {k: tfds.decode.SkipDecoding() for k in builder.info.features if k != "image_id"}
    ds = builder.as_dataset(split=split.split, decoders=skip, shuffle_files=False)
    ids = [i.decode() for i in ds.map(lambda ex: ex["image_id"]).as_numpy_iterator()]
    return [ids[r] for r in split.rows]


def make_dataset(pairs: Pairs, image_size: int, batch_size: int, **kwargs) -> tf.data.Dataset:
    """(image, mask) batches from folder pairs; `kwargs` as `batches`."""
    return batches(pairs_dataset(pairs), len(pairs), image_size, batch_size, **kwargs)


def eval_dataset(split: SegmentationSplit, image_size: int, batch_size: int, cache: bool = True):
    """One pass of (image, mask) batches in the split's order, no augmentation."""
    return batches(as_tf_dataset(split), len(split), image_size, batch_size, cache=cache)


def training_dataset(
    split: SegmentationSplit,
    image_size: int,
    batch_size: int,
    *,
    augment: bool,
    seed: int,
    start_epoch: int = 0,
    steps_per_epoch: int = 0,
    cache: bool = True,
) -> tuple[tf.data.Dataset, int]:
    """Endless shuffled, augmented batches (full batches only) and the steps of one epoch.

    Raises:
        ValueError: a batch larger than the split.
    """
    n = len(split)
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} is larger than the training split ({n})")
    steps = steps_per_epoch or n // batch_size
    ds = batches(
        as_tf_dataset(split), n, image_size, batch_size, augment=augment, shuffle=True,
        repeat=True, seed=seed, cache=cache, skip=start_epoch * steps * batch_size,
    )  # fmt: skip
    return ds, steps


def batches(
    ds: tf.data.Dataset,
    n: int,
    image_size: int,
    batch_size: int,
    *,
    augment: bool = False,
    shuffle: bool = False,
    repeat: bool = False,
    colour_space: str | None = None,
    seed: int = 0,
    cache: bool = True,
    skip: int = 0,
) -> tf.data.Dataset:
    """Resize -> cache -> shuffle -> repeat -> joint augmentation -> batch.

    Args:
        ds: (image, mask) pairs at any size.
        n: their number.
        image_size: square size images and masks are resized to.
        batch_size: batch size; with `repeat`, full batches only.
        augment: joint flips / rot90 / crops (`augment_pair`), seeded by (seed, position).
        shuffle: a new order every pass (seeded).
        repeat: repeat forever (pair with `steps_per_epoch`).
        colour_space: None keeps RGB [0, 255] (what every registry model expects: they convert
            inside); "rgb" / "lab" / "hsv" convert here to [0, 1] for models that do not.
        seed: seed of the shuffle and the augmentation draws.
        cache: keep decoded, resized pairs in memory (small sizes make this cheap).
        skip: examples of the stream to skip (a resumed run's epochs already trained).
    """
    ds = ds.map(lambda i, m: resize_pair(i, m, image_size), num_parallel_calls=AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        # tf.data derives the shuffle's seeds from TensorFlow's global seed too (whatever an
        # earlier run in this process set): pin it, so the order depends on `seed` alone.
        tf.random.set_seed(seed)
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if augment:
        # One seed per position in the stream: reproducible, new every epoch, resumable.
        ds = ds.enumerate().skip(skip)
        ds = ds.map(
            lambda i, pair: augment_pair(pair[0], pair[1], tf.stack([tf.cast(seed, tf.int64), i])),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
    elif skip:
        ds = ds.skip(skip)
    if colour_space is not None:
        ds = ds.map(lambda i, m: (convert_colour(i * 1.0, colour_space), m))
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(AUTOTUNE)
