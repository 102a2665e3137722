"""Image + mask input pipeline for segmentation (tf.data): official folder layouts, TFDS, augmentation.

Reads the official download layouts in place (ISIC 2017, ISIC 2018 Task 1, PH2) or any folder of
images with a folder of masks, or a TFDS builder with a `segmentation_mask` feature (the
`isic2017` segmentation config). Yields `(image float32 RGB [0, 255] (H, W, 3),
mask float32 {0, 1} (H, W, 1))`, the model contract's input plus a binary target.
"""

from __future__ import annotations

import tensorflow as tf

from tfmelanoma.data.masks import read_mask
from tfmelanoma.models.segmentation.colour_space import convert_colour
from tfmelanoma.models.segmentation.files import (  # noqa: F401  (re-exported)
    IMAGE_SUFFIXES,
    LAYOUTS,
    Layout,
    Pairs,
    find_pairs,
    folder_pairs,
)


def decode_image(path) -> tf.Tensor:
    """Reads any JPEG/PNG/BMP/GIF file as uint8 RGB (H, W, 3)."""
    data = tf.io.read_file(path)
    return tf.ensure_shape(
        tf.io.decode_image(data, channels=3, expand_animations=False), [None, None, 3]
    )


def decode_mask(path) -> tf.Tensor:
    """Reads a mask file as float32 {0, 1} (H, W, 1), by `tfmelanoma.data.masks.read_mask`.

    Through `tf.numpy_function`, so the tf.data and NumPy pipelines and the builders share one
    decoder (Pillow: BMP, TIFF and 0/1 masks included); sizes are checked by `files`.
    """
    mask = tf.numpy_function(lambda p: read_mask(p.decode()), [path], tf.uint8, stateful=False)
    return tf.cast(tf.ensure_shape(mask, [None, None]), tf.float32)[..., None]


def resize_pair(image, mask, size: int):
    """Resizes an image (bilinear, float32 [0, 255]) and its mask (nearest) to size x size."""
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    image = tf.clip_by_value(image, 0.0, 255.0)
    mask = tf.image.resize(tf.cast(mask, tf.float32), (size, size), method="nearest")
    return image, mask


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
    image = tf.image.resize(stacked[..., :3], (out, out))
    mask = tf.image.resize(stacked[..., 3:], (out, out), method="nearest")
    return image, mask


def make_dataset(
    pairs: Pairs,
    image_size: int,
    batch_size: int,
    *,
    augment: bool = False,
    shuffle: bool = False,
    repeat: bool = False,
    colour_space: str | None = None,
    seed: int = 0,
    cache: bool = True,
) -> tf.data.Dataset:
    """(image, mask) batches from matched files.

    Args:
        pairs: from `find_pairs` / `folder_pairs`.
        image_size: square size images and masks are resized to.
        batch_size: batch size.
        augment: joint flips / rot90 / crops (`augment_pair`).
        shuffle: shuffle file order each epoch.
        repeat: repeat forever (pair with `steps_per_epoch`).
        colour_space: None keeps RGB [0, 255] (what every registry model expects: they convert
            inside); "rgb" / "lab" / "hsv" convert here to [0, 1] for models that do not.
        seed: seed of the shuffle and the augmentation draws.
        cache: keep decoded, resized pairs in memory (small sizes make this cheap).
    """
    ds = tf.data.Dataset.from_tensor_slices((pairs.image_paths, pairs.mask_paths))
    ds = ds.map(
        lambda i, m: resize_pair(decode_image(i), decode_mask(m), image_size),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _finish(ds, len(pairs), batch_size, augment, shuffle, repeat, colour_space, seed, cache)


def tfds_dataset(
    name: str,
    split: str,
    image_size: int,
    batch_size: int,
    data_dir: str | None = None,
    limit: int | None = None,
    **kwargs,
) -> tf.data.Dataset:
    """(image, mask) batches from a prepared TFDS builder with a `segmentation_mask` feature.

    Args:
        name: e.g. "isic2017/segmentation"; the project's builders are imported so TFDS knows them.
        split: TFDS split name.
        image_size, batch_size: as in `make_dataset`.
        data_dir: TFDS data dir (None: the TFDS default).
        limit: keep the first `limit` examples (a TFDS split slice, taken before any shuffle).
        **kwargs: `augment`, `shuffle`, `repeat`, `colour_space`, `seed`, `cache` as in `make_dataset`.
    """
    import tensorflow_datasets as tfds  # noqa: PLC0415  (heavy; only needed on this path)

    _import_builder(name.split("/")[0])
    builder = tfds.builder(name, data_dir=data_dir)
    if "segmentation_mask" not in builder.info.features:
        raise ValueError(f"TFDS dataset {name!r} has no 'segmentation_mask' feature")
    if str(getattr(builder.info.file_format, "value", "")) == "array_record":
        raise ValueError(
            f"TFDS dataset {name!r} is ArrayRecord, which tf.data cannot read; use "
            "numpy_data.tfds_source (the segment CLI does so itself) or prepare it as tfrecord"
        )
    split = f"{split}[:{limit}]" if limit else split
    ds = builder.as_dataset(split=split)
    n = builder.info.splits[split].num_examples
    ds = ds.map(
        lambda ex: resize_pair(
            ex["image"], tf.cast(ex["segmentation_mask"] > 127, tf.float32), image_size
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _finish(ds, n, batch_size, **kwargs)


def tfds_image_ids(name: str, split: str, data_dir: str | None = None, limit: int | None = None):
    """The `image_id`s of a TFDS split in `tfds_dataset`'s order (its files, unshuffled).

    Only the id is decoded (images and masks are skipped), so this is a quick pass. Returns None
    when the dataset has no `image_id` feature.
    """
    import tensorflow_datasets as tfds  # noqa: PLC0415  (heavy; only needed on this path)

    _import_builder(name.split("/")[0])
    builder = tfds.builder(name, data_dir=data_dir)
    if "image_id" not in builder.info.features:
        return None
    split = f"{split}[:{limit}]" if limit else split
    skip = {k: tfds.decode.SkipDecoding() for k in builder.info.features if k != "image_id"}
    ds = builder.as_dataset(split=split, decoders=skip).map(lambda ex: ex["image_id"])
    return [i.decode() for i in ds.as_numpy_iterator()]


def _import_builder(module: str) -> None:
    try:
        __import__(f"tfds_builders.{module}")
    except ImportError:
        pass  # a builder TFDS already knows (or a typo that tfds.builder reports clearly)


def _finish(
    ds,
    n,
    batch_size,
    augment=False,
    shuffle=False,
    repeat=False,
    colour_space=None,
    seed=0,
    cache=True,
):
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(min(n, 2048), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if augment:
        # One seed per element from a seeded counter: reproducible, different every epoch.
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda pair, s: augment_pair(pair[0], pair[1], s),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if colour_space is not None:
        ds = ds.map(lambda i, m: (convert_colour(i * 1.0, colour_space), m))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
