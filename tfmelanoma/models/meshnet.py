"""MeshNet-style lightweight classifier for the browser demo.

MeshNet (Fedorov et al. 2017; used by brainchop and by the uncertainty paper's web demo) replaces
pooling with a stack of 3x3 convolutions whose dilation grows then shrinks (1, 2, 4, 8, 16, 8, 4,
2, 1), so the receptive field covers the image with very few parameters. For a 2-D classifier we
put a small strided stem in front (the dilated stack at full 224 px would cost ~4x the compute
for no accuracy we can measure at this size), then global average pooling and a dense head.

Only built-in layers (Rescaling, Conv2D, BatchNormalization, ReLU, Dropout,
GlobalAveragePooling2D, Dense, Activation) so TF.js runs it; `fold_batchnorm` removes the
BatchNorm layers before export.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tfmelanoma.models.heads import classification_head, image_input, load_weights
from tfmelanoma.models.registry import ModelInfo, register_model

DEFAULT_DILATIONS = (1, 2, 4, 8, 16, 8, 4, 2, 1)
DEFAULT_WIDTH = 32


def _conv_bn_relu(
    x: keras.KerasTensor,
    filters: int,
    name: str,
    strides: int = 1,
    dilation: int = 1,
    batch_norm: bool = True,
    dropout: float = 0.0,
) -> keras.KerasTensor:
    x = keras.layers.Conv2D(
        filters,
        3,
        strides=strides,
        dilation_rate=dilation,
        padding="same",
        # The bias is redundant before BatchNorm; fold_batchnorm adds it back.
        use_bias=not batch_norm,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def meshnet(
    num_classes: int = 2,
    input_shape: tuple[int | None, int | None, int] | None = None,
    width: int | Sequence[int] = DEFAULT_WIDTH,
    dilations: Sequence[int] = DEFAULT_DILATIONS,
    stem_convs: int = 2,
    dropout: float = 0.05,
    head_dropout: float = 0.2,
    batch_norm: bool = True,
    name: str = "meshnet",
    weights: str | None = None,
) -> keras.Model:
    """Builds a MeshNet classifier.

    Args:
        num_classes: 1 (sigmoid P(melanoma)), 2 (softmax, default) or K classes.
        input_shape: (H, W, 3), default (224, 224, 3); H and W may be None (global pooling).
        width: filters of every layer, or one value per dilated layer (len(dilations)).
        dilations: dilation of each 3x3 convolution of the main stack, e.g. (1, 2, 4, 8, 4, 2, 1).
        stem_convs: number of stride-2 3x3 convolutions before the dilated stack (each halves
            the resolution and quarters the compute); 0 runs the stack at full resolution.
        dropout: rate of the dropout after each dilated block (MeshNet uses ~0.05-0.25).
        head_dropout: dropout rate before the dense head.
        batch_norm: BatchNorm after each convolution (False: biased convs; what
            `fold_batchnorm` produces).
        name: model name.
        weights: None (random init) or a weights file of the same configuration.

    Returns:
        A `keras.Model` mapping float32 RGB [0, 255] to class probabilities. The last dilated
        block's activation is named `block{n}_relu` (`ModelInfo.last_conv_layer`).
    """
    dilations = tuple(int(d) for d in dilations)
    if not dilations or min(dilations) < 1:
        raise ValueError(f"dilations must be a non-empty sequence of ints >= 1, got {dilations}")
    widths = (width,) * len(dilations) if isinstance(width, int) else tuple(int(w) for w in width)
    if len(widths) != len(dilations) or min(widths) < 1:
        raise ValueError(
            f"width must be an int >= 1 or one int >= 1 per dilation ({len(dilations)}), got {width!r}"
        )
    if stem_convs < 0:
        raise ValueError(f"stem_convs must be >= 0, got {stem_convs}")

    inputs = image_input(input_shape, default_size=224)
    # [0, 255] -> [-1, 1] inside the model (architecture contract).
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    for i in range(stem_convs):
        x = _conv_bn_relu(x, widths[0], f"stem{i + 1}", strides=2, batch_norm=batch_norm)
    for i, (w, d) in enumerate(zip(widths, dilations, strict=True)):
        x = _conv_bn_relu(x, w, f"block{i + 1}", dilation=d, batch_norm=batch_norm, dropout=dropout)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = classification_head(x, num_classes, dropout=head_dropout)
    return load_weights(keras.Model(inputs, outputs, name=name), weights)


@register_model(
    ModelInfo(
        name="meshnet",
        family="meshnet",
        task="classification",
        input_size=224,
        preprocessing="Rescaling [0,255] -> [-1,1] in-model",
        last_conv_layer=f"block{len(DEFAULT_DILATIONS)}_relu",
        params=94_498,
        paper="uncertainty paper (web demo, MeshNet)",
        tfjs_ok=True,
        tags=("web",),
        min_input_size=32,
    )
)
def meshnet_classifier(**kwargs) -> keras.Model:
    """MeshNet with the default schedule (width 32, dilations 1-2-4-8-16-8-4-2-1, 2 stem convs).

    Args:
        **kwargs: see `meshnet`.
    """
    return meshnet(**kwargs)
