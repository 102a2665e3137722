"""Segmentation losses: Keras's own Dice loss per image, and Dice + binary cross-entropy.

`keras.losses.Dice` computes `1 - 2 sum(p g) / (sum(p) + sum(g))`; AER-Net's eq. 1 squares the
terms of the denominator (Milletari's V-Net form). Both have the same optimum (p = g for binary
g); we keep Keras's maintained version rather than hand-writing the paper's variant.
"""

from __future__ import annotations

import keras

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
