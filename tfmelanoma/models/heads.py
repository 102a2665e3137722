"""Shared pieces of every classifier: the image input and the probability head.

All classifiers end in `logits` (Dense) → `predictions` (softmax or sigmoid, float32), so
evaluation can read probabilities from the output and logits from `model.get_layer("logits")`
(temperature scaling), whatever the backbone.
"""

from __future__ import annotations

import keras


def image_input(
    input_shape: tuple[int | None, int | None, int] | None, default_size: int
) -> keras.KerasTensor:
    """The model input: float32 RGB in [0, 255].

    Args:
        input_shape: (H, W, 3); None means (default_size, default_size, 3).
        default_size: the architecture's default square size.

    Returns:
        A `keras.Input` named "image".

    Raises:
        ValueError: the shape is not (H, W, 3).
    """
    if input_shape is None:
        input_shape = (default_size, default_size, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(
            f"input_shape must be (height, width, 3) for RGB images, got {input_shape}"
        )
    return keras.Input(shape=input_shape, dtype="float32", name="image")


def check_num_classes(num_classes: int) -> int:
    """Validates `num_classes` (1 = one sigmoid unit, K >= 2 = softmax)."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(
            f"num_classes must be an int >= 1 (1 = sigmoid P(melanoma), 2 = softmax "
            f"non_melanoma/melanoma, 9 = harmonised classes), got {num_classes!r}"
        )
    return num_classes


def classification_head(
    features: keras.KerasTensor,
    num_classes: int = 2,
    dropout: float = 0.0,
    name: str = "",
) -> keras.KerasTensor:
    """Dropout → Dense logits → softmax (K >= 2) or sigmoid (K = 1) probabilities.

    Args:
        features: pooled features (B, C).
        num_classes: 1 for a single sigmoid unit (P(melanoma)), K >= 2 for softmax.
        dropout: dropout rate before the dense layer (0 disables it).
        name: prefix for the layer names ("" gives `logits` / `predictions`).

    Returns:
        Probabilities (B, K), float32 even under a mixed-precision policy.
    """
    check_num_classes(num_classes)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    prefix = f"{name}_" if name else ""
    x = features
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name=f"{prefix}head_dropout")(x)
    x = keras.layers.Dense(num_classes, name=f"{prefix}logits")(x)
    activation = "sigmoid" if num_classes == 1 else "softmax"
    # float32 so probabilities stay exact under mixed precision.
    return keras.layers.Activation(activation, dtype="float32", name=f"{prefix}predictions")(x)


def load_weights(model: keras.Model, weights: str | None) -> keras.Model:
    """Loads a `.weights.h5` / `.keras` weights file into a from-scratch model, if given.

    Args:
        model: the freshly built model.
        weights: None (keep the random init) or a path saved from the same architecture.

    Returns:
        `model`.

    Raises:
        ValueError: "imagenet" (these architectures have no ImageNet checkpoint here).
        FileNotFoundError: the path does not exist.
    """
    if weights is None:
        return model
    if weights == "imagenet":
        raise ValueError(
            f"{model.name} is trained from scratch and has no ImageNet weights; use a "
            "keras.applications entry or efficientnet_lite0 (offline ImageNet weights) instead"
        )
    from pathlib import Path

    if not Path(weights).is_file():
        raise FileNotFoundError(f"weights file not found for {model.name}: {weights}")
    model.load_weights(weights)
    return model
