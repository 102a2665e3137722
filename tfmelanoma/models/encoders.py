"""Registry classifiers as U-Net encoders: skip features picked by layer NAME from ModelInfo."""

from __future__ import annotations

import keras

from tfmelanoma.models.registry import create_model, get_model_info, list_models


def encoder_names() -> list[str]:
    """Registry entries that document skip layers (usable as segmentation encoders)."""
    return [n for n in list_models() if get_model_info(n).skip_layers]


def encoder(name: str, input_shape: tuple[int, int, int] | None = None, **kwargs) -> keras.Model:
    """A multi-output feature extractor over a registry classifier.

    Args:
        name: registry name with `ModelInfo.skip_layers` (see `encoder_names()`), e.g.
            "efficientnet_lite0" (offline ImageNet weights with `weights="imagenet"`).
        input_shape: (H, W, 3), H and W divisible by 32.
        **kwargs: passed to the model factory (weights, trainable_from, ...).

    Returns:
        A `keras.Model` taking float32 RGB [0, 255] and returning the list
        `[stride 2, stride 4, stride 8, stride 16, stride 32]` feature maps; the last is the
        classifier's `last_conv_layer`.

    Raises:
        ValueError: the entry has no documented skip layers.
    """
    info = get_model_info(name)
    if not info.skip_layers:
        raise ValueError(
            f"model {name!r} documents no skip layers; encoders: {', '.join(encoder_names())}"
        )
    model = create_model(name, input_shape=input_shape, **kwargs)
    names = (*info.skip_layers, info.last_conv_layer)
    return keras.Model(
        model.input, [model.get_layer(n).output for n in names], name=f"{name}_encoder"
    )
