"""`segmentation_models` (qubvel) Unet and FPN as comparison baselines under the project contract.

The library model is nested inside a thin wrapper that takes RGB [0, 255], applies the chosen
colour space and hands [0, 255]-scaled channels to the library backbone (the default ResNet-18
normalises with its own input BatchNorm, so no extra preprocessing is needed).
"""

from __future__ import annotations

import keras

from tfmelanoma.models.heads import image_input
from tfmelanoma.models.registry import ModelInfo, register_model
from tfmelanoma.models.segmentation.colour_space import ColourSpace
from tfmelanoma.models.segmentation.encoders import import_segmentation_models

_PAPER = "segmentation_models 1.0.1 (Yakubovskiy 2019), comparison baseline"


def _wrap(library_model: keras.Model, input_shape, colour_space: str, name: str) -> keras.Model:
    inputs = image_input(input_shape, default_size=256)
    x = ColourSpace(colour_space, name="colour_space")(inputs)
    x = keras.layers.Rescaling(255.0, name="to_255")(x)
    outputs = library_model(x)
    return keras.Model(inputs, outputs, name=name)


def _shape(input_shape):
    return tuple(input_shape) if input_shape is not None else (256, 256, 3)


def _info(name: str) -> ModelInfo:
    return ModelInfo(
        name=name,
        family="segmentation_models",
        task="segmentation",
        input_size=256,
        preprocessing="RGB [0,255] -> ColourSpace (RGB by default) -> x255 -> library backbone",
        paper=_PAPER,
        tags=("baseline",),
        imagenet=True,  # the library's encoders (downloaded once)
    )


@register_model(_info("sm_unet"))
def sm_unet(
    input_shape=None, backbone: str = "resnet18", weights=None, colour_space: str = "rgb"
) -> keras.Model:
    """`segmentation_models.Unet` with a sigmoid mask output (weights=None works offline)."""
    sm = import_segmentation_models()
    inner = sm.Unet(
        backbone,
        input_shape=_shape(input_shape),
        classes=1,
        activation="sigmoid",
        encoder_weights=weights,
    )
    return _wrap(inner, input_shape, colour_space, "sm_unet")


@register_model(_info("sm_fpn"))
def sm_fpn(
    input_shape=None, backbone: str = "resnet18", weights=None, colour_space: str = "rgb"
) -> keras.Model:
    """`segmentation_models.FPN` with a sigmoid mask output (weights=None works offline)."""
    sm = import_segmentation_models()
    inner = sm.FPN(
        backbone,
        input_shape=_shape(input_shape),
        classes=1,
        activation="sigmoid",
        encoder_weights=weights,
    )
    return _wrap(inner, input_shape, colour_space, "sm_fpn")
