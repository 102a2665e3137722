"""Segmentation metrics as small pure functions (NumPy in, numbers out), plus Keras versions.

Definitions (AER-Net eqs. 2-5): Jaccard `J = TP / (TP + FP + FN) = |G n O| / |G u O|`,
Dice `D = 2 TP / (2 TP + FP + FN) = 2 |G n O| / (|G| + |O|)`.

* **thresholded** (`threshold=0.5`): predictions are binarised first - what the paper and the
  ISIC challenges report; **soft** (`threshold=None`): probabilities are used as they are.
* **per image**: one score per image, then averaged (the paper's "mean Jaccard");
  **dataset-level**: TP/FP/FN summed over every pixel of every image, one ratio.
* **ISIC 2018 thresholded Jaccard**: per-image Jaccard, scores below 0.65 count as 0, then mean.

An image whose truth and prediction are both empty scores 1 (perfect agreement), not NaN.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

ISIC2018_JACCARD_CUTOFF = 0.65


def _as_batch(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2:  # one (H, W) mask
        y = y[None]
    return y.reshape(y.shape[0], -1)


def confusion_counts(y_true, y_pred, threshold: float | None = 0.5):
    """Per-image TP, FP, FN.

    Args:
        y_true: ground truth masks (N, H, W[, 1]) or one (H, W) mask, values in {0, 1}.
        y_pred: predicted probabilities, same shape.
        threshold: binarise predictions at `>= threshold`; None keeps them soft.

    Returns:
        Three float arrays of shape (N,).
    """
    t = _as_batch(y_true)
    p = _as_batch(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: truth {t.shape}, prediction {p.shape}")
    t = (t >= 0.5).astype(np.float64)
    if threshold is not None:
        p = (p >= threshold).astype(np.float64)
    return (t * p).sum(1), ((1 - t) * p).sum(1), (t * (1 - p)).sum(1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)


def jaccard_per_image(y_true, y_pred, threshold: float | None = 0.5) -> np.ndarray:
    """Per-image Jaccard `TP / (TP + FP + FN)`, shape (N,)."""
    tp, fp, fn = confusion_counts(y_true, y_pred, threshold)
    return _ratio(tp, tp + fp + fn)


def dice_per_image(y_true, y_pred, threshold: float | None = 0.5) -> np.ndarray:
    """Per-image Dice `2 TP / (2 TP + FP + FN)`, shape (N,)."""
    tp, fp, fn = confusion_counts(y_true, y_pred, threshold)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def jaccard_dataset(y_true, y_pred, threshold: float | None = 0.5) -> float:
    """Dataset-level Jaccard: counts summed over all images before the ratio."""
    tp, fp, fn = (c.sum() for c in confusion_counts(y_true, y_pred, threshold))
    return float(_ratio(tp, tp + fp + fn))


def dice_dataset(y_true, y_pred, threshold: float | None = 0.5) -> float:
    """Dataset-level Dice: counts summed over all images before the ratio."""
    tp, fp, fn = (c.sum() for c in confusion_counts(y_true, y_pred, threshold))
    return float(_ratio(2 * tp, 2 * tp + fp + fn))


def thresholded_jaccard(per_image_jaccard, cutoff: float = ISIC2018_JACCARD_CUTOFF) -> float:
    """ISIC 2018 Task 1 score: mean of per-image Jaccard with scores below `cutoff` set to 0."""
    scores = np.asarray(per_image_jaccard, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("thresholded_jaccard needs at least one per-image score")
    return float(np.where(scores < cutoff, 0.0, scores).mean())


def summarize(per_image_jaccard, per_image_dice) -> dict:
    """Mean per-image Jaccard / Dice and the ISIC 2018 thresholded Jaccard, as a dict."""
    j = np.asarray(per_image_jaccard, np.float64)
    d = np.asarray(per_image_dice, np.float64)
    return {
        "n_images": int(j.size),
        "jaccard": float(j.mean()),
        "dice": float(d.mean()),
        "thresholded_jaccard": thresholded_jaccard(j),
        "jaccard_median": float(np.median(j)),
    }


# Keras versions, for `model.compile(metrics=...)`: per-sample values that Keras averages over
# images, i.e. the per-image mean. Registered so saved models load with safe_mode=True.
def _counts_keras(y_true, y_pred, threshold):
    t = ops.cast(y_true >= 0.5, "float32")
    p = ops.cast(y_pred, "float32")
    if threshold is not None:
        p = ops.cast(p >= threshold, "float32")
    axes = tuple(range(1, len(t.shape)))
    return ops.sum(t * p, axes), ops.sum((1 - t) * p, axes), ops.sum(t * (1 - p), axes)


def _ratio_keras(num, den):
    return ops.where(den > 0, num / ops.where(den > 0, den, 1.0), 1.0)


@keras.saving.register_keras_serializable(package="tfmelanoma")
def dice_coefficient(y_true, y_pred):
    """Per-image Dice of predictions thresholded at 0.5 (Keras metric function)."""
    tp, fp, fn = _counts_keras(y_true, y_pred, 0.5)
    return _ratio_keras(2 * tp, 2 * tp + fp + fn)


@keras.saving.register_keras_serializable(package="tfmelanoma")
def jaccard_index(y_true, y_pred):
    """Per-image Jaccard of predictions thresholded at 0.5 (Keras metric function)."""
    tp, fp, fn = _counts_keras(y_true, y_pred, 0.5)
    return _ratio_keras(tp, tp + fp + fn)


@keras.saving.register_keras_serializable(package="tfmelanoma")
def soft_dice_coefficient(y_true, y_pred):
    """Per-image soft Dice on probabilities (Keras metric function)."""
    tp, fp, fn = _counts_keras(y_true, y_pred, None)
    return _ratio_keras(2 * tp, 2 * tp + fp + fn)


@keras.saving.register_keras_serializable(package="tfmelanoma")
def soft_jaccard_index(y_true, y_pred):
    """Per-image soft Jaccard on probabilities (Keras metric function)."""
    tp, fp, fn = _counts_keras(y_true, y_pred, None)
    return _ratio_keras(tp, tp + fp + fn)


def keras_metrics() -> list:
    """The metrics `segment train` compiles: per-image Dice/Jaccard plus Keras's dataset-level IoU."""
    return [
        dice_coefficient,
        jaccard_index,
        keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5, name="dataset_jaccard"),
    ]
