"""The U-Net family behind AER-Net's ablation: U-Net, + attention gates, + residual blocks,
+ pretrained encoder (AER-Net), built by one function from a few switches.

Every model takes float32 RGB in [0, 255] (the project contract), converts it to the chosen
colour space in [0, 1] inside the model (`ColourSpace`), and returns a (H, W, 1) sigmoid mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tfmelanoma.models.heads import image_input
from tfmelanoma.models.registry import walk_layers
from tfmelanoma.models.segmentation.attention_gate import AttentionGate
from tfmelanoma.models.segmentation.colour_space import ColourSpace
from tfmelanoma.models.segmentation.encoders import build_encoder
from tfmelanoma.models.segmentation.residual_block import ResidualBlock

PLAIN = "plain"
DEFAULT_DECODER_FILTERS = (256, 128, 64, 32, 16)


def conv_block(x, filters: int, residual: bool, name: str, bn_momentum: float = 0.99):
    """Two 3x3 conv + BN + ReLU (U-Net), or a `ResidualBlock` (same convs plus a shortcut)."""
    if residual:
        return ResidualBlock(filters, bn_momentum=bn_momentum, name=f"{name}_residual")(x)
    for i in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(
            x
        )
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn{i}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def decoder_block(
    x, skip, filters: int, attention: bool, residual: bool, name: str, bn_momentum: float = 0.99
):
    """2x2 up-convolution (doubles H, W; sets channels), optional gated skip, conv block.

    Args:
        x: decoder features from the level below.
        skip: encoder features at twice x's resolution, or None (last level of a backbone
            whose first skip is at stride 2).
        filters: channels of this level.
        attention: gate the skip with an `AttentionGate` driven by the upsampled decoder features.
        residual: use a `ResidualBlock` instead of the plain double convolution.
        name: layer-name prefix.
    """
    x = keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)
    if skip is not None:
        if attention:
            skip = AttentionGate(max(1, filters // 2), name=f"{name}_attention")([skip, x])
        x = keras.layers.Concatenate(name=f"{name}_concat")([x, skip])
    return conv_block(x, filters, residual, name, bn_momentum)


def build_unet(
    input_shape: Sequence[int] | None = None,
    *,
    encoder: str = PLAIN,
    attention: bool = False,
    residual: bool = False,
    base_filters: int = 32,
    depth: int = 4,
    decoder_filters: Sequence[int] = DEFAULT_DECODER_FILTERS,
    colour_space: str = "lab",
    weights: str | None = None,
    bn_momentum: float = 0.99,
    name: str = "unet",
) -> keras.Model:
    """Builds a U-Net variant.

    Args:
        input_shape: (H, W, 3); default (256, 256, 3) as in AER-Net. H and W must be divisible
            by 2**depth (plain encoder) or 32 (pretrained encoders).
        encoder: "plain" (the U-Net's own conv encoder), "efficientnetb0".."efficientnetb4",
            "efficientnet_lite0" or "sm:<segmentation_models backbone>".
        attention: attention gates on every skip connection.
        residual: residual blocks (in both paths for the plain encoder, in the decoder otherwise).
        base_filters: first-level channels of the plain encoder, doubled at each level.
        depth: number of poolings of the plain encoder.
        decoder_filters: channels of the five decoder levels for a pretrained encoder.
        colour_space: "rgb", "lab" (AER-Net's best) or "hsv", computed inside the model.
        weights: encoder weights, None or "imagenet" (ignored for the plain encoder).
        bn_momentum: momentum of every BatchNorm, the encoder's included; the Keras default
            0.99 suits long runs, ~0.9 lets runs of a few hundred steps predict sensibly.
        name: model name.

    Returns:
        A `keras.Model` mapping (B, H, W, 3) RGB [0, 255] to a (B, H, W, 1) mask in [0, 1].

    Raises:
        ValueError: bad shape, depth or encoder name.
    """
    inputs = image_input(input_shape, default_size=256)
    stride = 2**depth if encoder == PLAIN else 32
    for size in inputs.shape[1:3]:
        if size is not None and size % stride:
            raise ValueError(
                f"{name}: input height/width {tuple(inputs.shape[1:3])} must be divisible by "
                f"{stride} for encoder {encoder!r} (depth {depth})"
            )
    x = ColourSpace(colour_space, name="colour_space")(inputs)
    if encoder == PLAIN:
        if depth < 1:
            raise ValueError(f"{name}: depth must be >= 1, got {depth}")
        skips = []
        for level in range(depth):
            x = conv_block(x, base_filters * 2**level, residual, f"encoder{level}", bn_momentum)
            skips.append(x)
            x = keras.layers.MaxPooling2D(2, name=f"encoder{level}_pool")(x)
        x = conv_block(x, base_filters * 2**depth, residual, "bottleneck", bn_momentum)
        levels = [(skip, base_filters * 2**i) for i, skip in reversed(list(enumerate(skips)))]
    else:
        if weights in ("none", "None"):
            weights = None
        features = build_encoder(encoder, x, weights)
        x = features.bottleneck
        skips = features.skips[::-1] + [None] * (len(decoder_filters) - len(features.skips))
        levels = list(zip(skips, decoder_filters, strict=True))
    for i, (skip, filters) in enumerate(levels):
        x = decoder_block(x, skip, filters, attention, residual, f"decoder{i}", bn_momentum)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="mask")(x)
    model = keras.Model(inputs, outputs, name=name)
    if encoder != PLAIN and bn_momentum != 0.99:
        _set_bn_momentum(model, bn_momentum)
    return model


def _set_bn_momentum(model: keras.Model, momentum: float) -> None:
    # The backbone's own BatchNorms too: a from-scratch encoder trained for a few hundred steps
    # otherwise predicts with moving statistics still near their initial values (measured:
    # Jaccard 0 on ISIC 2017 validation after 96 steps at 0.99). `momentum` is in each layer's
    # config, so saved models keep it.
    for layer in walk_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
