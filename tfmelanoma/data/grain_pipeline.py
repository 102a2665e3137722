"""The `grain` input pipeline: batches gathered from the decoded cache, augmented in the step.

    split ──(decode once)──> decoded_cache (uint8 memmap at data.cache_size)
          ──> grain.MapDataset.range(first batch, last batch).map(CachedBatches)
          ──> IterDataset (threads; worker processes with data.workers > 0) ──> model.fit
          ──> DeviceAugment (first layer of the training wrapper, compiled with the step)

Batch `g` of the run is batch `g % steps` of epoch `g // steps`, a pure function of (seed,
epoch, step): the epoch's order is the seeded permutation of `SeededBatches`, and the batch's
augmentation parameters come from `np.random.default_rng([seed, epoch, step])`. The training
dataset covers the whole run from `start_epoch` on, and `fit` with `steps_per_epoch` reads it
with one iterator, so a resumed run reads exactly the batches of an uninterrupted one (no epoch
callback, no random-generator state). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import grain
import numpy as np

from tfmelanoma.config import AugmentConfig
from tfmelanoma.data import device_augment
from tfmelanoma.data.decoded_cache import DecodedCache
from tfmelanoma.data.numpy_pipeline import encode_target


class CachedBatches:
    """Batch maker over a decoded cache: `maker(g)` is run batch `g` (picklable for workers).

    Args:
        cache: the split's decoded cache.
        labels: label per cache row.
        rows: cache rows in stream order (oversampling repeats rows); default all, once.
        batch_size: examples per batch.
        num_classes: model outputs (1 = sigmoid).
        image_size: the model's input side.
        augment_config: training (shuffled, augmented, full batches); None = evaluation (cache
            order, identity parameters, last partial batch kept).
        seed: run seed.
        steps_per_epoch: training batches per epoch (0 = one pass, partial batch dropped).
        class_weight: class -> weight: training batches carry sample weights.
        pad_to_multiple: evaluation: pad the last batch with zero-weight copies to a multiple
            of this (data-parallel replicas); every batch then carries sample weights.
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
    ):
        self.folder = cache.folder
        self._arrays = dict(cache.arrays)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.rows = np.arange(len(cache)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.training = augment_config is not None
        n = len(self.rows)
        if n == 0:
            raise ValueError("the split is empty")
        if self.training and batch_size > n:
            raise ValueError(
                f"batch size {batch_size} is larger than the training split ({n} examples)"
            )
        self.batch_size = batch_size
        self.num_classes = num_classes
        self.image_size = image_size
        self.augment_config = augment_config
        self.seed = seed
        self.full_batches = n // batch_size
        self.steps = (
            (steps_per_epoch or self.full_batches) if self.training else -(-n // batch_size)
        )
        self.weights = (
            None
            if class_weight is None or not self.training
            else np.array([class_weight[c] for c in sorted(class_weight)], np.float32)
        )
        self.pad_to_multiple = 1 if self.training else pad_to_multiple
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
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))
        self._order = (epoch, order)
        return order

    def _rows(self, g: int) -> tuple[np.ndarray, int, int]:
        """(cache rows, epoch, step) of run batch `g`."""
        if not self.training:
            return self.rows[g * self.batch_size : (g + 1) * self.batch_size], 0, g
        epoch, step = divmod(g, self.steps)
        start = (step % self.full_batches) * self.batch_size  # wraps past one pass
        return self.rows[self._epoch_order(epoch)[start : start + self.batch_size]], epoch, step

    def __call__(self, g: int) -> tuple:
        rows, epoch, step = self._rows(int(g))
        if self.training:
            params = device_augment.sample_params(
                np.random.default_rng([self.seed, epoch, step]),
                len(rows),
                self.augment_config,
                self.image_size,
            )
        else:
            params = device_augment.identity_params(len(rows))
        images = self._array("image")[rows]  # one copy out of the (page-cached) memmap
        labels = self.labels[rows]
        x = {device_augment.IMAGE_KEY: images, device_augment.PARAMS_KEY: params}
        y = encode_target(labels, self.num_classes)
        if self.weights is not None:
            return x, y, self.weights[labels]
        if self.pad_to_multiple > 1:
            pad = -len(rows) % self.pad_to_multiple
            w = np.concatenate([np.ones(len(rows)), np.zeros(pad)]).astype(np.float32)
            x = {k: np.concatenate([v, np.repeat(v[-1:], pad, axis=0)]) for k, v in x.items()}
            return x, np.concatenate([y, np.repeat(y[-1:], pad, axis=0)]), w
        return x, y


class CachedPairs(CachedBatches):
    """Segmentation batches ({image, augment_params}, mask) over a cache with `image` and
    `mask`; the joint geometric augmentation (`device_augment.sample_pair_params`) is applied to
    both in the step by `device_augment.AugmentedSegmenter`.

    Args:
        cache: decoded cache with fields `image` and `mask` (uint8 {0, 1}).
        augment: draw augmentation parameters in training (else identity).
        training: shuffled full batches per epoch; else the cache order, last batch kept.
        **kwargs: `batch_size`, `image_size`, `seed`, `steps_per_epoch` of `CachedBatches`.
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

    def __call__(self, g: int) -> tuple:
        rows, epoch, step = self._rows(int(g))
        if self.training and self.augment:
            rng = np.random.default_rng([self.seed, epoch, step])
            params = device_augment.sample_pair_params(rng, len(rows))
        else:
            params = device_augment.identity_params(len(rows))
        x = {
            device_augment.IMAGE_KEY: self._array("image")[rows],
            device_augment.PARAMS_KEY: params,
        }
        return x, self._array("mask")[rows]


def dataset(
    maker: CachedBatches,
    *,
    start_epoch: int = 0,
    epochs: int = 1,
    threads: int = 1,
    workers: int = 0,
    prefetch: int = 8,
) -> grain.IterDataset:
    """The grain dataset of `maker`'s batches: training from `start_epoch` to `epochs`, or one
    pass (evaluation).

    Args:
        threads: grain read threads. Gathers are memory copies: one thread, reading ahead,
            serves ~25,000 images/s at 224 px on this 2-core machine (2 threads: ~13,000,
            contending for the cores with the step); more help only on many idle cores.
        workers: grain worker processes (0 = none, in-process).
        prefetch: batches read ahead.
    """
    first, last = (
        (start_epoch * maker.steps, epochs * maker.steps)
        if maker.training
        else (
            0,
            maker.steps,
        )
    )
    ds = grain.MapDataset.range(first, last).map(maker)
    ds = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=max(threads, 1), prefetch_buffer_size=prefetch)
    )
    if workers > 0:
        from absl import flags

        # grain 0.2.x reads an absl flag in mp_prefetch and fails unless flags were parsed
        # (google/grain#1355; fixed after 0.2.18): scripts not run by absl.app parse none.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return ds
