"""The small-CNN paper's networks: TinyVGG, AlexNet and VGG11 (Keogh).

Layouts follow the paper's printed PyTorch modules (TinyVGG from CNN Explainer; AlexNet and VGG11
as in torchvision), trained from scratch. At their default input size the layer shapes, and so
the parameter counts, equal the PyTorch ones. `num_classes=1` gives the paper's single sigmoid
output; the project default is the 2-class softmax of the model contract.
"""

from __future__ import annotations

import keras

from tfmelanoma.models.heads import classification_head, image_input, load_weights
from tfmelanoma.models.preprocessing import DESCRIPTIONS, preprocess
from tfmelanoma.models.registry import ModelInfo, register_model

PAPER = "small-CNN paper (Keogh)"

# torchvision VGG config "A" (VGG11): filters per conv, "M" = 2x2 max pool.
VGG11_LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
# (filters, kernel, stride, padding, pool after) of torchvision's AlexNet features.
ALEXNET_LAYOUT = (
    (64, 11, 4, 2, True),
    (192, 5, 1, 2, True),
    (384, 3, 1, 1, False),
    (256, 3, 1, 1, False),
    (256, 3, 1, 1, True),
)


def _vgg_features(x: keras.KerasTensor, layout: tuple) -> keras.KerasTensor:
    block, conv = 1, 1
    for item in layout:
        if item == "M":
            x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
            block, conv = block + 1, 1
            continue
        x = keras.layers.Conv2D(
            item, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}"
        )(x)
        conv += 1
    return x


@register_model(
    ModelInfo(
        name="tinyvgg",
        family="small_cnn",
        task="classification",
        input_size=300,
        preprocessing=DESCRIPTIONS["unit"],
        last_conv_layer="block2_conv2",
        params=115_512,
        paper=PAPER,
        tfjs_ok=True,
        min_input_size=32,
    )
)
def tinyvgg(
    num_classes: int = 2,
    input_shape: tuple[int, int, int] | None = None,
    filters: int = 10,
    dropout: float = 0.0,
    weights: str | None = None,
) -> keras.Model:
    """TinyVGG: 2 blocks of 2 ReLU 3x3 convs (10 filters) + 2x2 max pool, flatten, dense.

    Args:
        num_classes: 1 (the paper's sigmoid output), 2 (softmax, default) or K.
        input_shape: (H, W, 3), default (300, 300, 3) as in the paper.
        filters: filters per convolution.
        dropout: dropout before the dense layer (the paper uses none).
        weights: None (random init) or a weights file of the same architecture.

    Returns:
        A `keras.Model` from float32 RGB [0, 255] (scaled to [0, 1] in-model) to probabilities.
    """
    inputs = image_input(input_shape, default_size=300)
    x = preprocess(inputs, "unit")
    x = _vgg_features(x, (filters, filters, "M", filters, filters, "M"))
    x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, classification_head(x, num_classes, dropout), name="tinyvgg")
    return load_weights(model, weights)


@register_model(
    ModelInfo(
        name="vgg11",
        family="small_cnn",
        task="classification",
        input_size=224,
        preprocessing=DESCRIPTIONS["torch"],
        last_conv_layer="block5_conv2",
        params=128_774_530,
        paper=PAPER,
        min_input_size=32,
    )
)
def vgg11(
    num_classes: int = 2,
    input_shape: tuple[int, int, int] | None = None,
    fc_units: int = 4096,
    dropout: float = 0.5,
    weights: str | None = None,
) -> keras.Model:
    """VGG11 (configuration A) from scratch, torchvision layout with a 1- or K-unit output.

    Args:
        num_classes: 1 (the paper's sigmoid output), 2 (softmax, default) or K.
        input_shape: (H, W, 3), default (224, 224, 3); at 224 the flattened features are
            7x7x512 = 25,088 as in torchvision (whose adaptive pooling is then the identity).
        fc_units: width of the two hidden dense layers.
        dropout: dropout after each hidden dense layer.
        weights: None (random init) or a weights file of the same architecture.

    Returns:
        A `keras.Model` from float32 RGB [0, 255] (ImageNet mean/std in-model) to probabilities.
    """
    inputs = image_input(input_shape, default_size=224)
    x = preprocess(inputs, "torch")
    x = _vgg_features(x, VGG11_LAYOUT)
    x = keras.layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = keras.layers.Dense(fc_units, activation="relu", name=f"fc{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    return load_weights(
        keras.Model(inputs, classification_head(x, num_classes), name="vgg11"), weights
    )


@register_model(
    ModelInfo(
        name="alexnet",
        family="small_cnn",
        task="classification",
        input_size=224,
        preprocessing=DESCRIPTIONS["torch"],
        last_conv_layer="conv5",
        params=57_012_034,
        paper=PAPER,
        min_input_size=64,
    )
)
def alexnet(
    num_classes: int = 2,
    input_shape: tuple[int, int, int] | None = None,
    fc_units: int = 4096,
    dropout: float = 0.5,
    weights: str | None = None,
) -> keras.Model:
    """AlexNet (single-GPU torchvision variant: 64-192-384-256-256 filters) from scratch.

    Args:
        num_classes: 1 (the paper's sigmoid output), 2 (softmax, default) or K.
        input_shape: (H, W, 3), default (224, 224, 3) giving torchvision's 6x6x256 features;
            at least 64 px.
        fc_units: width of the two hidden dense layers.
        dropout: dropout before each hidden dense layer (as torchvision).
        weights: None (random init) or a weights file of the same architecture.

    Returns:
        A `keras.Model` from float32 RGB [0, 255] (ImageNet mean/std in-model) to probabilities.
    """
    inputs = image_input(input_shape, default_size=224)
    x = preprocess(inputs, "torch")
    for i, (filters, kernel, stride, pad, pool) in enumerate(ALEXNET_LAYOUT, start=1):
        x = keras.layers.ZeroPadding2D(pad, name=f"conv{i}_pad")(x)
        x = keras.layers.Conv2D(
            filters, kernel, strides=stride, activation="relu", name=f"conv{i}"
        )(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        x = keras.layers.Dense(fc_units, activation="relu", name=f"fc{i}")(x)
    return load_weights(
        keras.Model(inputs, classification_head(x, num_classes), name="alexnet"), weights
    )
