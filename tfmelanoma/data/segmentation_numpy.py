"""The TF-free segmentation input pipeline: a `SegmentationSplit`'s data source -> NumPy batches.

For Keras 3 on JAX (the GPU host has no TensorFlow) and for ArrayRecord datasets on any backend
(`tf.data` cannot read them). Yields the same batches as the tf.data twin
(`tfmelanoma.data.segmentation`): `(image float32 RGB [0, 255] (B, S, S, 3), mask float32 {0, 1}
(B, S, S, 1))`, served as a `keras.utils.PyDataset` (`numpy_pipeline.SeededBatches`), which
`model.fit` accepts on every backend. Nothing here imports TensorFlow.

Pixels go through `tfmelanoma.data.image_ops`: images `resize_antialiased_np` (the triangle filter
of `tf.image.resize(antialias=True)`, within 1e-3 of 255), masks `resize_mask_np` (TensorFlow's
half-pixel nearest rule, bit identical), so masks stay binary with no threshold to choose. Joint
augmentation (flips, 90-degree rotations, a random square crop resized back to the side, like
`segmentation.augment_pair`) is seeded per (seed, epoch, example): runs are reproducible and
resumable.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tfmelanoma.data.image_ops import resize_antialiased_np, resize_mask_np
from tfmelanoma.data.masks import binarise
from tfmelanoma.data.numpy_pipeline import SeededBatches
from tfmelanoma.data.segmentation_sources import MASK_KEY


def binary_mask(mask: np.ndarray) -> np.ndarray:
    """uint8 mask (H, W[, 1]) -> float32 {0, 1} (H, W, 1), by `tfmelanoma.data.masks.binarise`."""
    mask = np.asarray(mask)
    if mask.ndim == 2:
        mask = mask[..., None]
    return binarise(mask).astype(np.float32)


def augment_pair(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, crop_fraction: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Joint random flips, 90-degree rotation and square crop, identical for image and mask.

    The NumPy twin of `segmentation.augment_pair`: every geometric op indexes image and mask with the
    same draw, and the crop is resized back to the input side (image bilinear, mask nearest).

    Args:
        image: float32 (S, S, 3).
        mask: float32 (S, S, 1) in {0, 1}.
        rng: the example's generator.
        crop_fraction: the crop side as a fraction of the input side, drawn in [crop_fraction, 1].

    Returns:
        `(image, mask)` of the input shapes, the mask still binary.
    """
    size = image.shape[0]
    if rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if rng.random() < 0.5:
        image, mask = image[::-1], mask[::-1]
    k = int(rng.integers(0, 4))
    image, mask = np.rot90(image, k), np.rot90(mask, k)
    height, width = image.shape[:2]
    side = max(1, int(min(height, width) * rng.uniform(crop_fraction, 1.0)))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    image = image[top : top + side, left : left + side]
    mask = mask[top : top + side, left : left + side]
    # Upsampling (the crop is never larger): Pillow's filter equals plain bilinear here, i.e.
    # `image_ops.resize_np` and tf.data's crop resize (tested), faster and GIL-free.
    image = resize_antialiased_np(image, size)
    mask = resize_mask_np(mask, size)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(mask, np.float32)


class SegmentationBatches(SeededBatches):
    """Batches of (images, masks) from a random-access source of segmentation examples.

    Built on the classification pipeline's `SeededBatches`: batch `i` of epoch `e` is a pure
    function of (seed, e, i), prefetched by its own threads (`workers`), so runs reproduce and
    resume exactly; pass `callbacks=[batches.epoch_callback()]` to `model.fit`.

    Args:
        source: `SegmentationSplit.as_data_source()` (dicts with `image`,
            `segmentation_mask`, optionally `image_id`).
        image_size: square side images and masks are resized to.
        batch_size: examples per batch.
        augment: joint flips / rot90 / crops (`augment_pair`).
        shuffle: a new example order every epoch; training mode (full batches only).
        seed: run seed; the epoch's order and each example's augmentation derive from it.
        limit: use only the first `limit` examples.
        colour_space: None keeps RGB [0, 255] (what registry models expect); "rgb" / "lab" /
            "hsv" convert to [0, 1] with the models' own `convert_colour`.
        cache: keep decoded, resized pairs in memory (1 MB per example at 256 px).
        **kwargs: `start_epoch`, `steps_per_epoch`, `workers`, `prefetch` of `SeededBatches`.
    """

    def __init__(
        self,
        source: Sequence[dict],
        *,
        image_size: int,
        batch_size: int,
        augment: bool = False,
        shuffle: bool = False,
        seed: int = 0,
        limit: int | None = None,
        colour_space: str | None = None,
        cache: bool = True,
        **kwargs,
    ):
        n = min(len(source), limit) if limit else len(source)
        super().__init__(n, batch_size=batch_size, training=shuffle, seed=seed, **kwargs)
        self.source = source
        self.image_size = image_size
        self.augment = augment
        self.colour_space = colour_space
        self._cache = {} if cache else None

    def example(self, row: int) -> tuple[np.ndarray, np.ndarray, str]:
        """(image, mask, image_id) of one example, resized, not augmented."""
        if self._cache is not None and row in self._cache:
            return self._cache[row]
        ex = self.source[row]
        image = resize_antialiased_np(ex["image"], self.image_size)
        mask = resize_mask_np(binary_mask(ex[MASK_KEY]), self.image_size)
        image_id = ex.get("image_id", f"#{row}")
        image_id = image_id.decode() if isinstance(image_id, bytes) else str(image_id)
        item = (image, mask, image_id)
        if self._cache is not None:
            self._cache[row] = item
        return item

    def image_ids(self) -> list[str]:
        """Ids of the examples in evaluation order (TFDS `image_id`, file stem, or `#row`)."""
        return [self.example(int(r))[2] for r in np.arange(self.n)]

    def make_batch(self, rows: np.ndarray, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        images, masks = [], []
        for row in rows:
            image, mask, _ = self.example(int(row))
            if self.augment:
                rng = np.random.default_rng([self.seed, epoch, int(row)])
                image, mask = augment_pair(image, mask, rng)
            images.append(image)
            masks.append(mask)
        images = np.stack(images)
        if self.colour_space is not None:
            from tfmelanoma.models.segmentation.colour_space import convert_colour  # noqa: PLC0415

            images = keras.ops.convert_to_numpy(convert_colour(images, self.colour_space))
        return images, np.stack(masks)
