"""The training run's input pipeline, chosen per backend and device (`data.pipeline`).

- `tf`: tf.data decoding, resizing and augmenting every image every epoch on the CPU
  (`data/pipeline.py`); `auto` on the TensorFlow backend without an accelerator.
- `numpy`: the same work in NumPy over `tfds.data_source` (ArrayRecord), TF-free
  (`data/numpy_pipeline.py`); `auto` on other backends without an accelerator.
- `grain` and `tf_cached`: each image decoded once into a memory-mapped cache; per step the CPU
  only gathers rows and draws a few augmentation parameters, and the augmentation runs inside
  the compiled step (`data/cached_batches.py`, `data/device_augment.py`). grain serves the
  batches on JAX (or any backend), tf.data on TensorFlow: the same uint8 rows and parameters for
  the same seed, so the same augmented pixels within float rounding
  (`tests/data/test_cached_batches.py`). `auto` beside a GPU or TPU.

All are reproducible and resumable from a seed, serve the pixels of the one pixel contract
(`data/image_ops.py`), and implement every `AugmentConfig` option with the same distributions
(`tests/data/test_augment_parity.py`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from tfmelanoma.config import Config
from tfmelanoma.datasets.materialise import SplitView

CACHED = ("grain", "tf_cached")
"""Pipelines that decode each image once into a decoded cache and augment in the step."""


def resolve_pipeline(config: Config) -> str:
    """ "tf", "tf_cached", "numpy" or "grain" for `data.pipeline` on the current backend."""
    if config.data.pipeline != "auto":
        return config.data.pipeline
    if keras.backend.backend() == "tensorflow":
        # The same split as grain's below: augmentation in the step pays beside an accelerator.
        return "tf_cached" if _accelerator() else "tf"
    # grain moves the augmentation into the step: a win where the step runs on an accelerator
    # (benchmarks/loader.py); on a CPU the augmentation costs the same either side, so the
    # NumPy pipeline stays.
    if importlib.util.find_spec("grain") is not None and _accelerator():
        return "grain"
    return "numpy"


def tfrecord_datasets(config: Config) -> list[str]:
    """The config's datasets (training and test) already prepared as TFRecord in `data.data_dir`:
    the decoded-cache pipelines read ArrayRecord only."""
    import tensorflow_datasets as tfds

    from tfmelanoma.datasets.access import builder_name, is_array_record
    from tfmelanoma.datasets.combination import parse_tests

    names = dict.fromkeys([*config.data.train, *(t.dataset for t in parse_tests(config.data.test))])
    found = []
    for name in names:
        try:
            builder = tfds.builder(builder_name(name), data_dir=config.data.data_dir or None)
        except Exception:  # unknown or not registered yet: loading the data names the problem
            continue
        if builder.is_prepared() and not is_array_record(builder):
            found.append(name)
    return found


def _accelerator() -> bool:
    """Whether Keras's default device is a GPU or TPU."""
    if keras.backend.backend() == "torch":  # no keras.distribution there
        import torch

        return torch.cuda.is_available()
    try:
        devices = keras.distribution.list_devices()
    except (AttributeError, NotImplementedError, RuntimeError, ValueError):
        return False
    return bool(devices) and not str(devices[0]).lower().startswith("cpu")


def file_format(pipeline: str) -> str:
    """The TFDS file format a pipeline needs datasets prepared in."""
    return "tfrecord" if pipeline == "tf" else "array_record"


def cache_size(config: Config) -> int:
    """`data.cache_size`, or its default: image_size x 8/7 rounded up to a multiple of 8 when
    crop or zoom augmentation takes a part of the image (so the crop keeps detail), else
    image_size."""
    d, a = config.data, config.augment
    if d.cache_size:
        return d.cache_size
    if a.enabled and (a.crop_scale < 1 or a.zoom > 0):
        return -(-d.image_size // 7) * 8
    return d.image_size


def workers(config: Config) -> int:
    """NumPy pipeline threads: `data.workers`, or min(8, CPU count)."""
    return config.data.workers or min(8, os.cpu_count() or 1)


@dataclass
class Inputs:
    """Training and validation batches for `model.fit`.

    Attributes:
        train: batches of (images, targets[, sample weights]), endless (tf.data) or one epoch
            per pass (NumPy).
        steps: batches per epoch.
        validation: batches of (images, targets[, weights]), one pass.
        padded: validation batches carry sample weights that zero out padding (metrics must be
            compiled as weighted metrics to ignore it).
        callbacks: callbacks the pipeline needs in `fit` (the NumPy pipeline's epoch setter).
        wrap: what `fit` trains in place of the model, when the pipeline needs one (grain:
            `device_augment.training_model`, augmentation in the step); None = the model.
        validation_steps: validation batches, for inputs whose length `fit` cannot see.
        per_process: in a multi-host run the batches hold only this process's rows already
            (else the runner cuts them out, `devices.per_process`).
    """

    train: Any
    steps: int
    validation: Any
    padded: bool = False
    callbacks: list = field(default_factory=list)
    wrap: Callable[[keras.Model], keras.Model] | None = None
    validation_steps: int | None = None
    per_process: bool = False


def make_inputs(
    config: Config,
    pipeline: str,
    train: SplitView,
    validation: SplitView,
    class_weight: dict[int, float] | None,
    start_epoch: int,
    replicas: int = 1,
    age_target: Callable | None = None,
) -> Inputs:
    """Builds the configured pipeline over two splits.

    Args:
        replicas: data-parallel replicas; the NumPy pipeline pads the last validation batch to a
            multiple of it (tf.distribute handles uneven batches itself).
        age_target: a diagnosis + age model's age target (`models.multitask.age_target`):
            batches carry per-head targets and weights (`data.pipeline.training_dataset`);
            the tf pipeline only.

    Raises:
        ValueError: empty split, a batch larger than the training split, or `age_target` with
            another pipeline than tf.
    """
    d, r = config.data, config.run
    common = dict(
        image_size=d.image_size,
        batch_size=r.batch_size,
        num_classes=config.model.num_classes,
        label_key=d.label,
    )
    oversample = d.balance == "oversample"
    if age_target is not None and pipeline != "tf":
        raise ValueError(f"data.pipeline={pipeline!r}: a diagnosis + age model trains on tf only")
    a = config.augment
    if a.mixes_batches and pipeline != "tf":
        raise ValueError(
            f"augment.mixup={a.mixup}, augment.cutmix={a.cutmix} need data.pipeline=tf (the "
            f"{pipeline!r} pipeline mixes no batches yet); set data.pipeline=tf, or both to 0"
        )
    if pipeline == "tf":
        from tfmelanoma.data import pipeline as tf_pipeline

        train_ds, steps = tf_pipeline.training_dataset(
            train.as_tf_dataset(),
            augment_config=config.augment,
            seed=r.seed,
            cache=d.cache,
            oversample=oversample,
            class_weight=class_weight,
            start_epoch=start_epoch,
            steps_per_epoch=r.steps_per_epoch,
            age_target=age_target,
            **common,
        )
        val_ds = tf_pipeline.eval_dataset(
            validation.as_tf_dataset(), cache=d.cache, age_target=age_target, **common
        )
        return Inputs(train_ds, steps, val_ds)

    if pipeline in CACHED:
        return _cached_inputs(
            config, pipeline, train, validation, class_weight, start_epoch, replicas
        )

    from tfmelanoma.data.numpy_pipeline import NumpyBatches

    # Threads, not processes: decoding and NumPy release the GIL, and threads share the sources.
    loader = dict(workers=workers(config))
    train_batches = NumpyBatches(
        train.as_data_source(oversample=oversample, seed=r.seed),
        augment_config=config.augment,
        seed=r.seed,
        class_weight=class_weight,
        start_epoch=start_epoch,
        steps_per_epoch=r.steps_per_epoch,
        **common,
        **loader,
    )
    val_batches = NumpyBatches(
        validation.as_data_source(), pad_to_multiple=replicas, **common, **loader
    )
    return Inputs(
        train_batches,
        len(train_batches),
        val_batches,
        padded=replicas > 1,
        callbacks=[train_batches.epoch_callback()],
    )


def _decoded(view: SplitView, config: Config, size: int):
    """The view's decoded cache at `size` (built on first use)."""
    from tfmelanoma.data import decoded_cache, image_ops

    folder = config.data.cache_dir or decoded_cache.default_cache_dir(view.data_dir)
    return decoded_cache.open_or_build(
        view.as_data_source(),
        fingerprint=decoded_cache.frame_fingerprint(view.frame, "resize_np"),
        size=size,
        cache_dir=decoded_cache.expand(folder),
        fields={"image": image_ops.resize_np},
        workers=workers(config),
    )


def serve(maker, pipeline: str, config: Config, *, start_epoch: int = 0, training: bool):
    """Decoded-cache batches as the pipeline serves them: grain, or tf.data (`tf_cached`)."""
    epochs = config.run.epochs if training else 1
    if pipeline == "tf_cached":
        from tfmelanoma.data import pipeline as tf_pipeline

        return tf_pipeline.cached_dataset(maker, start_epoch=start_epoch, epochs=epochs)
    from tfmelanoma.data import grain_pipeline

    workers = config.data.grain_workers if training else 0
    return grain_pipeline.dataset(maker, start_epoch=start_epoch, epochs=epochs, workers=workers)


def process() -> tuple[int, int]:
    """(index, count) of this process in a multi-host run ((0, 1) otherwise)."""
    from tfmelanoma.training import devices

    return devices.process_index(), devices.process_count()


def _cached_inputs(
    config, pipeline, train, validation, class_weight, start_epoch, replicas
) -> Inputs:
    """Batches from decoded caches through grain or tf.data; augmentation in the training step."""
    from tfmelanoma.data import device_augment
    from tfmelanoma.data.cached_batches import CachedBatches
    from tfmelanoma.datasets import sampling

    d, r = config.data, config.run
    common = dict(
        batch_size=r.batch_size,
        num_classes=config.model.num_classes,
        image_size=d.image_size,
        process=process(),
    )
    rows = None
    if d.balance == "oversample":
        frame = train.frame.assign(_row=np.arange(len(train)))
        rows = sampling.oversample(frame, seed=r.seed)["_row"].to_numpy()
    train_maker = CachedBatches(
        _decoded(train, config, cache_size(config)),
        train.frame[d.label].to_numpy(),
        augment_config=config.augment,
        rows=rows,
        seed=r.seed,
        steps_per_epoch=r.steps_per_epoch,
        class_weight=class_weight,
        **common,
    )
    val_maker = CachedBatches(
        _decoded(validation, config, d.image_size),
        validation.frame[d.label].to_numpy(),
        pad_to_multiple=replicas,
        **common,
    )
    return Inputs(
        serve(train_maker, pipeline, config, start_epoch=start_epoch, training=True),
        train_maker.steps,
        serve(val_maker, pipeline, config, training=False),
        padded=replicas > 1,
        validation_steps=val_maker.steps,
        wrap=lambda model: device_augment.training_model(model, config.augment, d.image_size),
        per_process=True,
    )


def predict_view(
    model: keras.Model, view: SplitView, config: Config, pipeline: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Runs `model` over a split in its order.

    Returns:
        (labels (N,), probabilities (N, K) or (N, 1), image ids).
    """
    kwargs = dict(
        image_size=config.data.image_size,
        batch_size=config.run.batch_size,
        label_key=config.data.label,
    )
    if pipeline == "tf":
        from tfmelanoma.data import pipeline as tf_pipeline

        return tf_pipeline.predict_split(model, view.as_tf_dataset(), **kwargs)

    from tfmelanoma.data.numpy_pipeline import NumpyBatches

    batches = NumpyBatches(
        view.as_data_source(),
        num_classes=config.model.num_classes,
        workers=workers(config),
        **kwargs,
    )
    out = model.predict(batches, verbose=0)
    if isinstance(out, dict):
        out = out["diagnosis"]
    # The data source reads the view's rows in order, so labels and ids come from its index.
    labels = view.frame[config.data.label].to_numpy(dtype=np.int64)
    ids = [str(i) for i in view.frame["image_id"]]
    return labels, np.asarray(out, dtype=np.float64), ids
