"""The TF-free input pipeline: `tfds.data_source` (ArrayRecord) -> NumPy batches for any backend.

For machines without TensorFlow (e.g. Keras 3 on JAX on a GPU host): examples come from
`Combination.as_data_source(split)` (random access over ArrayRecord), are resized exactly like the
tf.data pipeline (bilinear, half-pixel centres, no antialiasing) and augmented with NumPy, and are
served as a `keras.utils.PyDataset`, which `model.fit` accepts on every backend. Nothing here
imports TensorFlow.

Augmentations (seeded per run, epoch and example, so runs are reproducible and resumable): random
resized crop, the eight dihedral transforms (flips and 90-degree rotations; arbitrary-angle
rotation and hue jitter are tf.data-only), brightness, contrast and saturation jitter, cutout.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tfmelanoma.config import AugmentConfig


def resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> float32 (size, size, C), as `tf.image.resize(bilinear, antialias=False)`.

    Written with NumPy because no maintained NumPy-only library reproduces TensorFlow's
    half-pixel-centre bilinear resize (PIL antialiases when shrinking), and the two pipelines must
    feed a model the same pixels.
    """
    image = np.asarray(image, dtype=np.float32)
    h, w = image.shape[:2]

    def coords(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(size, dtype=np.float64) + 0.5) * (n_in / size) - 0.5
        src = np.clip(src, 0.0, n_in - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, fy = coords(h)
    x0, x1, fx = coords(w)
    top = image[y0][:, x0] * (1 - fx)[None, :, None] + image[y0][:, x1] * fx[None, :, None]
    bottom = image[y1][:, x0] * (1 - fx)[None, :, None] + image[y1][:, x1] * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
    return np.clip(out, 0.0, 255.0)


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
        image = resize_bilinear(image[y : y + ch, x : x + cw], size)
    if config.rotation > 0:
        image = np.rot90(image, k=int(rng.integers(0, 4)))
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
    if config.saturation > 0:
        grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        factor = rng.uniform(1 - config.saturation, 1 + config.saturation)
        x = grey[..., None] + (x - grey[..., None]) * factor
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


class NumpyBatches(keras.utils.PyDataset):
    """Batches of (images, targets) from a random-access source of example dicts.

    Args:
        source: e.g. `Combination.as_data_source("train")` (dicts with `image`, `label`).
        image_size: square side.
        batch_size: examples per batch.
        num_classes: model outputs (1 = sigmoid).
        augment_config: augmentations for training; None = evaluation (fixed order, no
            augmentation, last partial batch kept).
        seed: run seed; the epoch's order and each example's augmentation derive from it.
        label_key: `label` or `harmonised_diagnosis`.
        start_epoch: epochs already trained (resume).
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of `keras.utils.PyDataset`.
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
        start_epoch: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(source) == 0:
            raise ValueError("the split is empty")
        if augment_config is not None and batch_size > len(source):
            raise ValueError(f"batch size {batch_size} is larger than the split ({len(source)})")
        self.source = source
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_classes = num_classes
        self.augment_config = augment_config
        self.seed = seed
        self.label_key = label_key
        self.epoch = start_epoch
        self._order = self._epoch_order()

    @property
    def training(self) -> bool:
        return self.augment_config is not None

    def _epoch_order(self) -> np.ndarray:
        n = len(self.source)
        if not self.training:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def __len__(self) -> int:
        n = len(self.source)
        return n // self.batch_size if self.training else -(-n // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        images, labels = [], []
        for row in rows:
            example = self.source[int(row)]
            image = resize_bilinear(example["image"], self.image_size)
            if self.training:
                rng = np.random.default_rng([self.seed, self.epoch, int(row)])
                image = augment(image, rng, self.augment_config)
            images.append(image)
            labels.append(int(example[self.label_key]))
        return np.stack(images), encode_target(np.asarray(labels), self.num_classes)

    def on_epoch_end(self) -> None:
        if self.training:
            self.epoch += 1
            self._order = self._epoch_order()
