"""Batches gathered from a decoded cache, with their augmentation parameters: what grain and
tf.data serve when the augmentation runs in the training step.

    split ──(decode once)──> decoded_cache (uint8 memmap at data.cache_size)
          ──> CachedBatches(g) = ({image, augment_params}, targets[, weights]) for run batch g
          ──> grain (`grain_pipeline.dataset`) or tf.data (`pipeline.cached_dataset`)
          ──> DeviceAugment (first layer of the training wrapper, compiled with the step)

Run batch `g` is batch `g % steps` of epoch `g // steps`, a pure function of (seed, epoch, step):
the epoch's order comes from `BatchPlan` (the NumPy pipeline's plan), and the batch's
augmentation parameters from `np.random.default_rng([seed, epoch, step])`. So grain on JAX and
tf.data on TensorFlow feed the same uint8 images and parameters for the same seed, and
`DeviceAugment` turns them into the same pixels on both backends within float rounding
(`tests/data/test_cached_batches.py`). Nothing here imports TensorFlow or grain.

Several processes (multi-host JAX): each process gathers only its rows of every global batch
(`process=(index, count)`), with the parameters drawn for the whole global batch, so the
processes together train on exactly the batches of one process.
"""

from __future__ import annotations

import numpy as np

from tfmelanoma.config import AugmentConfig
from tfmelanoma.data import device_augment
from tfmelanoma.data.batch_plan import BatchPlan
from tfmelanoma.data.decoded_cache import DecodedCache
from tfmelanoma.data.numpy_pipeline import encode_target


class CachedBatches:
    """Batch maker over a decoded cache: `maker(g)` is run batch `g` (picklable for workers).

    Args:
        cache: the split's decoded cache.
        labels: label per cache row.
        rows: cache rows in stream order (oversampling repeats rows); default all, once.
        batch_size: examples per (global) batch.
        num_classes: model outputs (1 = sigmoid).
        image_size: the model's input side.
        augment_config: training (shuffled, augmented, full batches); None = evaluation (cache
            order, identity parameters, last partial batch kept).
        seed: run seed.
        steps_per_epoch: training batches per epoch (0 = one pass, partial batch dropped).
        class_weight: class -> weight: training batches carry sample weights.
        pad_to_multiple: evaluation: pad the last batch with zero-weight copies to a multiple
            of this (data-parallel replicas); every batch then carries sample weights.
        process: (index, count): serve only this process's rows of every global batch, rows
            [index * b / count, (index + 1) * b / count) of a batch of b.

    Raises:
        ValueError: an empty split, a training batch larger than the split, or a batch that
            does not split evenly between the processes.
    """

    def __init__(
        self,
        cache: DecodedCache,
        labels: np.ndarray,
        *,
        batch_size: int,
        num_classes: int,
        image_size: int,
        augment_config: AugmentConfig | None = None,
        rows: np.ndarray | None = None,
        seed: int = 0,
        steps_per_epoch: int = 0,
        class_weight: dict[int, float] | None = None,
        pad_to_multiple: int = 1,
        process: tuple[int, int] = (0, 1),
    ):
        self.folder = cache.folder
        self._arrays = dict(cache.arrays)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.rows = np.arange(len(cache)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.training = augment_config is not None
        self.plan = BatchPlan(len(self.rows), batch_size, self.training, seed, steps_per_epoch)
        self.batch_size = batch_size
        self.num_classes = num_classes
        self.image_size = image_size
        self.augment_config = augment_config
        self.seed = seed
        self.steps = self.plan.steps
        self.weights = (
            None
            if class_weight is None or not self.training
            else np.array([class_weight[c] for c in sorted(class_weight)], np.float32)
        )
        self.pad_to_multiple = 1 if self.training else pad_to_multiple
        self.process = process
        if batch_size % process[1]:
            raise ValueError(
                f"a batch of {batch_size} does not split evenly between {process[1]} processes"
            )
        self._order: tuple[int, np.ndarray] | None = None

    def __getstate__(self):  # worker processes map the cache themselves
        return dict(self.__dict__, _arrays={}, _order=None)

    def _array(self, key: str) -> np.ndarray:
        if key not in self._arrays:
            self._arrays[key] = np.load(self.folder / f"{key}.npy", mmap_mode="r")
        return self._arrays[key]

    def _epoch_order(self, epoch: int) -> np.ndarray:
        cached = self._order  # one read: other threads may replace it meanwhile
        if cached is not None and cached[0] == epoch:
            return cached[1]
        order = self.plan.order(epoch)
        self._order = (epoch, order)
        return order

    def _rows(self, g: int) -> tuple[np.ndarray, int, int]:
        """(cache rows of the global batch, epoch, step) of run batch `g`."""
        epoch, step = divmod(g, self.steps) if self.training else (0, g)
        return self.rows[self._epoch_order(epoch)[self.plan.window(step)]], epoch, step

    def _params(self, n: int, epoch: int, step: int, augment: bool) -> np.ndarray:
        if not augment:
            return device_augment.identity_params(n)
        return device_augment.sample_params(
            np.random.default_rng([self.seed, epoch, step]),
            n,
            self.augment_config,
            self.image_size,
        )

    def _local(self, n: int) -> slice:
        """This process's rows of a global batch of `n`."""
        index, count = self.process
        if n % count:
            raise ValueError(
                f"a batch of {n} does not split evenly between {count} processes (evaluation "
                "batches are padded to a multiple of the replicas only in classification)"
            )
        return slice(index * n // count, (index + 1) * n // count)

    def __call__(self, g: int) -> tuple:
        rows, epoch, step = self._rows(int(g))
        params = self._params(len(rows), epoch, step, self.training)
        weights = None
        if self.weights is not None:
            weights = self.weights[self.labels[rows]]
        elif self.pad_to_multiple > 1:
            pad = -len(rows) % self.pad_to_multiple
            weights = np.concatenate([np.ones(len(rows)), np.zeros(pad)]).astype(np.float32)
            rows = np.concatenate([rows, np.repeat(rows[-1:], pad)])
            params = np.concatenate([params, np.repeat(params[-1:], pad, axis=0)])
        keep = self._local(len(rows))
        rows, params = rows[keep], params[keep]
        # One copy out of the (page-cached) memmap, of this process's rows only.
        x = {
            device_augment.IMAGE_KEY: self._array("image")[rows],
            device_augment.PARAMS_KEY: params,
        }
        y = encode_target(self.labels[rows], self.num_classes)
        return (x, y) if weights is None else (x, y, weights[keep])


class CachedPairs(CachedBatches):
    """Segmentation batches ({image, augment_params}, mask) over a cache with `image` and
    `mask`; the joint geometric augmentation (`device_augment.sample_pair_params`) is applied to
    both in the step by `device_augment.AugmentedSegmenter`.

    Args:
        cache: decoded cache with fields `image` and `mask` (uint8 {0, 1}).
        augment: draw augmentation parameters in training (else identity).
        training: shuffled full batches per epoch; else the cache order, last batch kept.
        **kwargs: `batch_size`, `image_size`, `seed`, `steps_per_epoch`, `process` of
            `CachedBatches`.
    """

    def __init__(self, cache: DecodedCache, *, augment: bool, training: bool, **kwargs):
        super().__init__(
            cache,
            np.zeros(len(cache), np.int64),
            num_classes=2,
            augment_config=AugmentConfig() if training else None,
            **kwargs,
        )
        self.augment = augment

    def _params(self, n: int, epoch: int, step: int, augment: bool) -> np.ndarray:
        if not (augment and self.augment):
            return device_augment.identity_params(n)
        return device_augment.sample_pair_params(np.random.default_rng([self.seed, epoch, step]), n)

    def __call__(self, g: int) -> tuple:
        rows, epoch, step = self._rows(int(g))
        params = self._params(len(rows), epoch, step, self.training)
        keep = self._local(len(rows))
        rows, params = rows[keep], params[keep]
        x = {
            device_augment.IMAGE_KEY: self._array("image")[rows],
            device_augment.PARAMS_KEY: params,
        }
        return x, self._array("mask")[rows]


def run_range(maker: CachedBatches, *, start_epoch: int = 0, epochs: int = 1) -> tuple[int, int]:
    """The run batches [first, last) a dataset of `maker` serves: training from `start_epoch`
    to `epochs` (one stream over the whole run, so `fit` with `steps_per_epoch` reads a resumed
    run's batches exactly), or one pass (evaluation)."""
    if maker.training:
        return start_epoch * maker.steps, epochs * maker.steps
    return 0, maker.steps
