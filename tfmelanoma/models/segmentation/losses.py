"""Segmentation training objective: losses (Keras's own Dice loss per image, Dice + binary
cross-entropy) and the Keras metrics training compiles.

They live with the models, not in `tfmelanoma.evaluation`, because a compiled `.keras` file
names them: importing `tfmelanoma.models` registers them, so every saved segmentation model loads
with `safe_mode=True`. The NumPy scores of a report are `tfmelanoma.evaluation.segmentation`'s.

`keras.losses.Dice` computes `1 - 2 sum(p g) / (sum(p) + sum(g))`; AER-Net's eq. 1 squares the
terms of the denominator (Milletari's V-Net form). Both have the same optimum (p = g for binary
g); we keep Keras's maintained version rather than hand-writing the paper's variant.
"""

from __future__ import annotations

import keras
from keras import ops

# Sum over H, W, C of each image: one Dice per image, then Keras averages over the batch, so a
# small lesion counts as much as a large one (a batch-level Dice would let large ones dominate).
PER_IMAGE_AXES = (1, 2, 3)
LOSSES = ("dice", "dice_bce", "bce")


@keras.saving.register_keras_serializable(package="tfmelanoma")
class DiceBCELoss(keras.losses.Loss):
    """`dice_weight * Dice(per image) + bce_weight * binary cross-entropy`.

    Args:
        dice_weight: weight of the Dice term.
        bce_weight: weight of the cross-entropy term.
        **kwargs: standard `keras.losses.Loss` arguments (name, reduction, dtype).
    """

    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0, **kwargs):
        kwargs.setdefault("name", "dice_bce")
        super().__init__(**kwargs)
        self.dice_weight = float(dice_weight)
        self.bce_weight = float(bce_weight)
        self._dice = keras.losses.Dice(axis=PER_IMAGE_AXES, reduction=None)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        dice = self._dice(y_true, y_pred)
        bce = keras.ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
        return self.dice_weight * dice + self.bce_weight * bce

    def get_config(self):
        config = super().get_config()
        config.update({"dice_weight": self.dice_weight, "bce_weight": self.bce_weight})
        return config


def get_loss(name: str) -> keras.losses.Loss:
    """ "dice" (AER-Net's loss, per image), "dice_bce" or "bce".

    Raises:
        ValueError: unknown name, listing the choices.
    """
    if name == "dice":
        return keras.losses.Dice(axis=PER_IMAGE_AXES, name="dice")
    if name == "dice_bce":
        return DiceBCELoss()
    if name == "bce":
        return keras.losses.BinaryCrossentropy(name="bce")
    raise ValueError(f"unknown segmentation loss {name!r}; expected one of {LOSSES}")


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
    """What segmentation training compiles: per-image Dice and Jaccard (logged as `dice`,
    `jaccard`; `val_dice` picks the best epoch) plus Keras's dataset-level IoU."""
    return [
        keras.metrics.MeanMetricWrapper(dice_coefficient, name="dice"),
        keras.metrics.MeanMetricWrapper(jaccard_index, name="jaccard"),
        keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5, name="dataset_jaccard"),
    ]
