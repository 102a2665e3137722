"""The training run's input pipeline: tf.data or the TF-free NumPy pipeline, chosen per backend.

`data.pipeline=auto` picks tf.data on the TensorFlow backend and the NumPy pipeline
(`tfmelanoma.data.numpy_pipeline.NumpyBatches` over `tfds.data_source`, ArrayRecord) on the
others, so `KERAS_BACKEND=jax python -m tfmelanoma.train` runs where TensorFlow is not installed.
Both pipelines serve the same pixels (same decode and resize; `tests/data/test_numpy_pipeline.py`)
and are reproducible and resumable from a seed; their augmentations differ in detail (the NumPy
one rotates by multiples of 90 degrees and has no hue jitter).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from tfmelanoma.config import Config
from tfmelanoma.datasets.materialise import SplitView


def resolve_pipeline(config: Config) -> str:
    """ "tf" or "numpy" for `data.pipeline` on the current Keras backend."""
    if config.data.pipeline != "auto":
        return config.data.pipeline
    return "tf" if keras.backend.backend() == "tensorflow" else "numpy"


def file_format(pipeline: str) -> str:
    """The TFDS file format a pipeline needs datasets prepared in."""
    return "array_record" if pipeline == "numpy" else "tfrecord"


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
    """

    train: Any
    steps: int
    validation: Any
    padded: bool = False
    callbacks: list = field(default_factory=list)


def make_inputs(
    config: Config,
    pipeline: str,
    train: SplitView,
    validation: SplitView,
    class_weight: dict[int, float] | None,
    start_epoch: int,
    replicas: int = 1,
) -> Inputs:
    """Builds the configured pipeline over two splits.

    Args:
        replicas: data-parallel replicas; the NumPy pipeline pads the last validation batch to a
            multiple of it (tf.distribute handles uneven batches itself).

    Raises:
        ValueError: empty split, or a batch larger than the training split.
    """
    d, r = config.data, config.run
    common = dict(
        image_size=d.image_size,
        batch_size=r.batch_size,
        num_classes=config.model.num_classes,
        label_key=d.label,
    )
    oversample = d.balance == "oversample"
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
            **common,
        )
        val_ds = tf_pipeline.eval_dataset(validation.as_tf_dataset(), cache=d.cache, **common)
        return Inputs(train_ds, steps, val_ds)

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
