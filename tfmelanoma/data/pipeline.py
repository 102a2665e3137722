"""tf.data input pipeline: feature dicts (the common schema) -> batches for Keras.

Order of a training stream, chosen so that a run is reproducible for a seed and an interrupted run
resumes with exactly the examples and augmentations it would have seen:

    decode + resize -> cache -> shuffle(seed, reshuffle each pass) -> repeat -> enumerate
    -> skip(examples already seen) -> augment(seed derived from (run seed, position)) -> batch
    [-> mixup / CutMix (seed derived from the batch's first position), with augment.mixup/cutmix]

Images stay float32 RGB in [0, 255]; models normalise inside themselves (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfmelanoma.config import AugmentConfig
from tfmelanoma.data.augment import augment, mix
from tfmelanoma.data.image_ops import decode_tf, resize_tf

AUTOTUNE = tf.data.AUTOTUNE


def encode_target(label: tf.Tensor, num_classes: int) -> tf.Tensor:
    """Integer label -> one-hot (K >= 2) or a float (1,) vector (single sigmoid unit)."""
    if num_classes == 1:
        return tf.cast(tf.reshape(label, [1]), tf.float32)
    return tf.one_hot(tf.cast(label, tf.int32), num_classes)


def _decode(example: dict, image_size: int, label_key: str, age: bool = False) -> tuple:
    """(image, label), or (image, label, age in years) for a multi-task model."""
    image = example["image"]
    if image.dtype == tf.string:  # datasets read with SkipDecoding
        image = decode_tf(image)
    out = resize_tf(image, image_size), tf.cast(example[label_key], tf.int64)
    return (*out, tf.cast(example["age"], tf.float32)) if age else out


def _multitask(target, age, age_target, weight=None) -> tuple[dict, dict]:
    """Per-head targets and sample weights of a diagnosis + age model: the age head's weight is
    0 where the age is unknown (< 0), the diagnosis head's the class weight (else 1)."""
    from tfmelanoma.models.multitask import age_known

    targets = {"diagnosis": target, "age": age_target(age)}
    weights = {"diagnosis": tf.constant(1.0) if weight is None else weight, "age": age_known(age)}
    return targets, weights


def count(ds: tf.data.Dataset) -> int:
    """Number of elements (iterates only when the cardinality is unknown)."""
    n = int(ds.cardinality())
    if n >= 0:
        return n
    return int(ds.reduce(np.int64(0), lambda c, _: c + 1))


def training_dataset(
    source: tf.data.Dataset,
    *,
    image_size: int,
    batch_size: int,
    num_classes: int,
    augment_config: AugmentConfig,
    seed: int,
    label_key: str = "label",
    cache: bool = True,
    oversample: bool = False,
    class_weight: dict[int, float] | None = None,
    start_epoch: int = 0,
    steps_per_epoch: int = 0,
    age_target: Callable | None = None,
) -> tuple[tf.data.Dataset, int]:
    """An endless, seeded stream of augmented training batches.

    Args:
        source: feature dicts (needs `image` and `label_key`).
        image_size: square side in pixels.
        batch_size: examples per batch; larger than the split is an error.
        num_classes: model outputs (1 = sigmoid, >= 2 one-hot targets).
        augment_config: which augmentations, how strong.
        seed: run seed; shuffling and every augmentation derive from it.
        label_key: `label` (binary) or `harmonised_diagnosis`.
        cache: keep decoded, resized images in memory.
        oversample: draw both classes equally often (binary labels).
        class_weight: class -> weight, emitted as a sample weight.
        start_epoch: epochs already trained (resume): their examples are skipped.
        steps_per_epoch: batches per epoch; 0 = one pass over `source` (partial batch dropped).
        age_target: for a diagnosis + age model: the examples' `age` (years, -1 unknown) ->
            the age head's target (`models.multitask.age_target`); the batches then carry
            per-head targets and sample weights, `{"diagnosis": ..., "age": ...}` each.

    Returns:
        (dataset of (images, targets[, sample_weights]), steps_per_epoch).

    Raises:
        ValueError: empty split, or batch larger than the split.
    """
    n = count(source)
    if n == 0:
        raise ValueError("the training split is empty")
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} is larger than the training split ({n} images)")
    steps = steps_per_epoch or n // batch_size
    multitask = age_target is not None
    ds = source.map(
        lambda ex: _decode(ex, image_size, label_key, multitask), num_parallel_calls=AUTOTUNE
    )
    if cache:
        ds = ds.cache()
    if oversample:
        parts = [
            ds.filter(lambda _, y, *age, c=c: tf.equal(y, c))
            .shuffle(n, seed=seed + c, reshuffle_each_iteration=True)
            .repeat()
            for c in range(max(num_classes, 2))
        ]
        ds = tf.data.Dataset.sample_from_datasets(parts, seed=seed, stop_on_empty_dataset=False)
    else:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.enumerate().skip(start_epoch * steps * batch_size)

    def _augment(index, pair):
        image, label, *age = pair
        example_seed = tf.stack([tf.constant(seed, tf.int64), index])
        image = augment(image, example_seed, augment_config)
        target = encode_target(label, num_classes)
        weight = None
        if class_weight is not None:
            weights = tf.constant([class_weight[c] for c in sorted(class_weight)], tf.float32)
            weight = tf.gather(weights, label)
        if multitask:
            return image, *_multitask(target, age[0], age_target, weight)
        return (image, target) if weight is None else (image, target, weight)

    mixing = augment_config.mixes_batches
    if mixing and multitask:
        raise ValueError(
            "augment.mixup / augment.cutmix: a diagnosis + age model does not take them"
        )
    if mixing:  # carry each example's stream position: the batch's mixing seed
        ds = ds.map(
            lambda index, pair: (index, *_augment(index, pair)),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
        ds = ds.batch(batch_size, drop_remainder=True)
        ds = ds.map(
            lambda index, *batch: mix(
                batch,
                tf.stack([tf.constant(seed, tf.int64), -1 - index[0]]),
                mixup=augment_config.mixup,
                cutmix=augment_config.cutmix,
            ),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
        return ds.prefetch(AUTOTUNE), steps
    ds = ds.map(_augment, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
    return ds, steps


def eval_dataset(
    source: tf.data.Dataset,
    *,
    image_size: int,
    batch_size: int,
    num_classes: int,
    label_key: str = "label",
    cache: bool = True,
    age_target: Callable | None = None,
) -> tf.data.Dataset:
    """Batches of (images, targets) in the source's order, no augmentation; with `age_target`
    (see `training_dataset`), of (images, per-head targets, per-head sample weights)."""
    multitask = age_target is not None
    ds = source.map(
        lambda ex: _decode(ex, image_size, label_key, multitask), num_parallel_calls=AUTOTUNE
    )
    if multitask:
        ds = ds.map(
            lambda x, y, age: (x, *_multitask(encode_target(y, num_classes), age, age_target)),
            num_parallel_calls=AUTOTUNE,
        )
    else:
        ds = ds.map(lambda x, y: (x, encode_target(y, num_classes)), num_parallel_calls=AUTOTUNE)
    if cache:
        ds = ds.cache()
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def predict_split(
    model, source: tf.data.Dataset, *, image_size: int, batch_size: int, label_key: str = "label"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Runs `model` over a split in order.

    Returns:
        (labels (N,), probabilities (N, K) or (N, 1), image ids).
    """
    ds = source.map(
        lambda ex: (*_decode(ex, image_size, label_key), ex["image_id"]),
        num_parallel_calls=AUTOTUNE,
    ).batch(batch_size)
    labels, probs, ids = [], [], []
    for images, y, image_ids in ds:
        out = model(images, training=False)
        if isinstance(out, dict):
            out = out["diagnosis"]
        probs.append(np.asarray(out, dtype=np.float64))
        labels.append(y.numpy())
        ids.extend(i.decode() for i in image_ids.numpy())
    if not probs:
        raise ValueError("the split to predict is empty")
    return np.concatenate(labels), np.concatenate(probs), ids


def cached_dataset(maker, *, start_epoch: int = 0, epochs: int = 1) -> tf.data.Dataset:
    """tf.data over decoded-cache batches (`cached_batches.CachedBatches` or `CachedPairs`):
    the batches grain serves (`grain_pipeline.dataset`), for the TensorFlow backend.

    Run batch `g` is `maker(g)`, gathered by `tf.numpy_function` on tf.data's threads in order
    (`deterministic=True`), read ahead; augmentation happens in the step
    (`device_augment`). Training covers the run from `start_epoch` to `epochs` as one stream,
    evaluation one pass.
    """
    from tfmelanoma.data.cached_batches import run_range

    first, last = run_range(maker, start_epoch=start_epoch, epochs=epochs)
    sample = maker(first)
    flat = tf.nest.flatten(sample)
    dtypes = [tf.as_dtype(a.dtype) for a in flat]
    shapes = [(None, *a.shape[1:]) for a in flat]  # the last evaluation batch may be shorter

    def gather(g):
        arrays = tf.numpy_function(lambda i: tf.nest.flatten(maker(int(i))), [g], dtypes)
        for array, shape in zip(arrays, shapes, strict=True):
            array.set_shape(shape)
        return tf.nest.pack_sequence_as(sample, arrays)

    ds = tf.data.Dataset.range(first, last)
    ds = ds.map(gather, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE)
