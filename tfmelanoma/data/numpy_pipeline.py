"""The TF-free input pipeline: `tfds.data_source` (ArrayRecord) -> NumPy batches for any backend.

For machines without TensorFlow (e.g. Keras 3 on JAX on a GPU host): examples come from
`Combination.as_data_source(split)` (random access over ArrayRecord), are resized exactly like the
tf.data pipeline (bilinear, half-pixel centres, no antialiasing) and augmented with NumPy, and are
served as a `keras.utils.PyDataset`, which `model.fit` accepts on every backend. Nothing here
imports TensorFlow.

Augmentations (seeded per run, epoch and example, so runs are reproducible and resumable): random
resized crop, zoom, rotation by any angle with a reflected border, flips, brightness, contrast,
saturation and hue jitter, cutout: every option of `AugmentConfig`, with the same parameters as
tf.data (`tests/data/test_augment_parity.py` compares their statistics per option).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import keras
import numpy as np
from PIL import Image
from scipy import ndimage

from tfmelanoma.config import AugmentConfig
from tfmelanoma.data.batch_plan import BatchPlan
from tfmelanoma.data.image_ops import resize_antialiased_np, resize_np


def rotate_reflect(image: np.ndarray, angle: float) -> np.ndarray:
    """Rotates (S, S, C) by `angle` radians about the centre, bilinear, the border filled by
    reflection (half-sample symmetric, as tf.data's ImageProjectiveTransformV3 REFLECT)."""
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]])
    centre = (np.array(image.shape[:2], dtype=np.float64) - 1) / 2
    offset = centre - matrix @ centre
    return np.stack(
        [
            ndimage.affine_transform(
                image[..., c], matrix, offset=offset, order=1, mode="reflect", prefilter=False
            )
            for c in range(image.shape[-1])
        ],
        axis=-1,
    )


def adjust_hsv(x: np.ndarray, saturation: float, hue: float) -> np.ndarray:
    """Scales the saturation by `saturation` and shifts the hue by `hue` of the colour circle,
    in HSV as tf.image's saturation and hue jitter, for RGB in [0, 1].

    Through Pillow's 8-bit HSV (7x faster than matplotlib's float HSV here; the 8-bit steps
    change pixels by 0.6 levels of 255 on average, negligible for an augmentation).
    """
    rgb = Image.fromarray(np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8), "RGB")
    h, s, v = rgb.convert("HSV").split()
    if hue:
        turn = int(round(hue * 256))
        h = h.point(lambda value: (value + turn) % 256)
    if saturation != 1.0:
        s = s.point(lambda value: min(255, int(round(value * saturation))))
    return np.asarray(Image.merge("HSV", (h, s, v)).convert("RGB"), dtype=np.float32) / 255.0


def augment(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """NumPy augmentation of a float32 [0, 255] (S, S, 3) image; returns the same shape."""
    if not config.enabled:
        return image
    size = image.shape[0]
    if config.crop_scale < 1:
        area = rng.uniform(config.crop_scale, 1.0)
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        ch = int(np.clip(round(size * np.sqrt(area / ratio)), 1, size))
        cw = int(np.clip(round(size * np.sqrt(area * ratio)), 1, size))
        y, x = rng.integers(0, size - ch + 1), rng.integers(0, size - cw + 1)
        # Upsampling (the crop is never larger): equal to `resize_np`, faster.
        image = resize_antialiased_np(image[y : y + ch, x : x + cw], size)
    if config.zoom > 0:  # zoom in around the centre by up to 1 / (1 - zoom), as tf.data
        keep = 1.0 - rng.uniform(0.0, config.zoom)
        crop = max(int(round(size * keep)), 1)
        offset = (size - crop) // 2
        image = resize_antialiased_np(image[offset : offset + crop, offset : offset + crop], size)
    if config.rotation > 0:  # any angle in ±rotation turns, the border filled by reflection
        image = rotate_reflect(image, rng.uniform(-config.rotation, config.rotation) * 2 * np.pi)
    if config.hflip and rng.random() < 0.5:
        image = image[:, ::-1]
    if config.vflip and rng.random() < 0.5:
        image = image[::-1]
    x = image / 255.0
    if config.brightness > 0:
        x = x + rng.uniform(-config.brightness, config.brightness)
    if config.contrast > 0:
        mean = x.mean(axis=(0, 1), keepdims=True)
        x = (x - mean) * rng.uniform(1 - config.contrast, 1 + config.contrast) + mean
    saturation = (
        rng.uniform(1 - config.saturation, 1 + config.saturation) if config.saturation > 0 else 1.0
    )
    hue = rng.uniform(-config.hue, config.hue) if config.hue > 0 else 0.0
    if config.saturation > 0 or config.hue > 0:  # in HSV, as tf.image
        x = adjust_hsv(x, saturation, hue)
    x = np.clip(x, 0.0, 1.0) * 255.0
    if config.cutout > 0:
        side = int(size * config.cutout)
        cy, cx = rng.integers(0, size), rng.integers(0, size)
        x[
            max(cy - side // 2, 0) : cy + side // 2 + 1, max(cx - side // 2, 0) : cx + side // 2 + 1
        ] = 0
    return np.ascontiguousarray(x, dtype=np.float32)


def encode_target(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels -> one-hot (K >= 2) or float (N, 1) (single sigmoid unit)."""
    if num_classes == 1:
        return labels.astype(np.float32)[:, None]
    return np.eye(num_classes, dtype=np.float32)[labels]


class SeededBatches(keras.utils.PyDataset):
    """Base of the NumPy pipelines: batch `i` of epoch `e` is a pure function of (seed, e, i).

    Subclasses turn a batch's rows into arrays (`make_batch`); this class owns the epoch's order
    (a seeded permutation in training, the source order in evaluation), the epoch number, and
    prefetching. Batches are prepared ahead by a thread pool of our own rather than by Keras's
    `workers` enqueuer, because that enqueuer carries batches it has prefetched over into the
    next epoch (it drains them into a queue served first), so which batch an epoch trains on would
    depend on timing and a resumed run would differ from an uninterrupted one. Here Keras asks for
    batches in order on one thread and gets exactly those; prefetching can only save time.

    Args:
        n: examples in the source.
        batch_size: examples per batch.
        training: shuffle every epoch and keep full batches only; else the source order with the
            last partial batch kept.
        seed: run seed.
        start_epoch: epochs already trained (resume).
        steps_per_epoch: batches per epoch in training; 0 = one pass (partial batch dropped).
            More batches than one pass wrap around the epoch's order.
        workers: threads preparing batches ahead (1 = prepare each batch when asked).
        prefetch: batches prepared ahead of the one asked for, when `workers > 1`.

    For exact per-epoch seeding in `model.fit` (resume), pass `callbacks=[batches.epoch_callback()]`.
    """

    def __init__(
        self,
        n: int,
        *,
        batch_size: int,
        training: bool,
        seed: int = 0,
        start_epoch: int = 0,
        steps_per_epoch: int = 0,
        workers: int = 1,
        prefetch: int = 8,
    ):
        super().__init__()  # Keras reads in order on one thread; see the class docstring
        self.plan = BatchPlan(n, batch_size, training, seed, steps_per_epoch)
        self.n = n
        self.batch_size = batch_size
        self.training = training
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch
        self.prefetch = prefetch
        self._pool = ThreadPoolExecutor(workers, "numpy-batches") if workers > 1 else None
        self._ahead: dict[tuple[int, int], Future] = {}
        self.epoch = start_epoch
        self._begun = False
        self._driven = False  # epochs set by `epoch_callback`
        self._order = self._epoch_order(start_epoch)

    def make_batch(self, rows: np.ndarray, epoch: int) -> tuple[np.ndarray, ...]:
        """The arrays of one batch from its source rows (seed augmentations by `epoch`, row)."""
        raise NotImplementedError

    def _epoch_order(self, epoch: int) -> np.ndarray:
        return self.plan.order(epoch)

    def __len__(self) -> int:
        return self.plan.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        if self._pool is None:
            return self._batch(self._order, self.epoch, index)
        key = (self.epoch, index)
        future = self._ahead.pop(key, None)
        if future is None:
            future = self._pool.submit(self._batch, self._order, *key)
        for ahead in range(index + 1, min(index + 1 + self.prefetch, len(self))):
            if (self.epoch, ahead) not in self._ahead:
                self._ahead[(self.epoch, ahead)] = self._pool.submit(
                    self._batch, self._order, self.epoch, ahead
                )
        return future.result()

    def _batch(self, order: np.ndarray, epoch: int, index: int) -> tuple[np.ndarray, ...]:
        return self.make_batch(order[self.plan.window(index)], epoch)

    def set_epoch(self, epoch: int) -> None:
        """Serves `epoch`'s order and augmentations from now on."""
        if epoch == self.epoch:
            return
        for future in self._ahead.values():
            future.cancel()
        self._ahead.clear()
        self.epoch = epoch
        self._order = self._epoch_order(epoch)

    def on_epoch_begin(self) -> None:
        # Without `epoch_callback`, epochs are counted at their start (Keras may also begin and
        # end an "epoch" to read one batch for the data's structure before training, so this
        # count can run one ahead; exact per-epoch seeding, e.g. for resume, needs the callback).
        if self.training and not self._driven:
            if self._begun:
                self.set_epoch(self.epoch + 1)
            self._begun = True

    def epoch_callback(self) -> keras.callbacks.Callback:
        """A callback for `model.fit` that serves each epoch's order by the epoch's own number.

        `fit` calls it at the start of every epoch (with `initial_epoch` counted in) before any
        batch of that epoch is read, so a resumed run sees exactly the batches of an
        uninterrupted one.
        """
        return _SetEpoch(self)

    def __del__(self):
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class NumpyBatches(SeededBatches):
    """Classification batches of (images, targets[, sample weights]) from a random-access source.

    Args:
        source: e.g. `Combination.as_data_source("train")` (dicts with `image`, `label`).
        image_size: square side.
        batch_size: examples per batch.
        num_classes: model outputs (1 = sigmoid).
        augment_config: augmentations for training; None = evaluation (fixed order, no
            augmentation, last partial batch kept).
        seed: run seed; the epoch's order and each example's augmentation derive from it.
        label_key: `label` or `harmonised_diagnosis`.
        class_weight: class -> weight; batches then carry per-example sample weights (training).
        pad_to_multiple: evaluation only: pad the last batch to a multiple of this many
            examples with zero-weight copies (and give every batch sample weights), so a batch
            always splits evenly between data-parallel replicas. Weighted metrics (accuracy,
            AUC) ignore the padding; a `sum_over_batch_size` loss counts it in that one batch's
            divisor (at most `pad_to_multiple - 1` examples).
        **kwargs: `start_epoch`, `steps_per_epoch`, `workers`, `prefetch` of `SeededBatches`.
    """

    def __init__(
        self,
        source: Sequence[dict],
        *,
        image_size: int,
        batch_size: int,
        num_classes: int,
        augment_config: AugmentConfig | None = None,
        seed: int = 0,
        label_key: str = "label",
        class_weight: dict[int, float] | None = None,
        pad_to_multiple: int = 1,
        **kwargs,
    ):
        super().__init__(
            len(source),
            batch_size=batch_size,
            training=augment_config is not None,
            seed=seed,
            **kwargs,
        )
        self.source = source
        self.image_size = image_size
        self.num_classes = num_classes
        self.augment_config = augment_config
        self.label_key = label_key
        self.class_weight = class_weight
        self.pad_to_multiple = 1 if self.training else pad_to_multiple

    def make_batch(self, rows: np.ndarray, epoch: int) -> tuple[np.ndarray, ...]:
        images, labels = [], []
        for row in rows:
            example = self.source[int(row)]
            image = resize_np(example["image"], self.image_size)
            if self.training:
                rng = np.random.default_rng([self.seed, epoch, int(row)])
                image = augment(image, rng, self.augment_config)
            images.append(image)
            labels.append(int(example[self.label_key]))
        labels = np.asarray(labels)
        batch = (np.stack(images), encode_target(labels, self.num_classes))
        if self.training and self.class_weight is not None:
            weights = np.array([self.class_weight[c] for c in sorted(self.class_weight)])
            return (*batch, weights[labels].astype(np.float32))
        if self.pad_to_multiple > 1:
            pad = -len(rows) % self.pad_to_multiple
            weights = np.concatenate([np.ones(len(rows)), np.zeros(pad)]).astype(np.float32)
            return (*(np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) for a in batch), weights)
        return batch


class _SetEpoch(keras.callbacks.Callback):
    def __init__(self, batches: SeededBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches._driven = True
        self.batches.set_epoch(epoch)
