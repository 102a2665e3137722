"""Transfer-learning classifiers over `keras.applications` (the papers' 24+ ImageNet CNNs).

Architecture as data: `ARCHITECTURES` is a table, one row per network, and one generic builder
(`transfer_classifier`) turns a row into a model; each row is registered under its name. The
application is built on the preprocessed input tensor, so the classifier is ONE flat functional
graph: Grad-CAM and U-Net skips find the backbone's layers with `model.get_layer(name)`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras

from tfmelanoma.models.heads import check_num_classes, classification_head, image_input
from tfmelanoma.models.preprocessing import DESCRIPTIONS, preprocess
from tfmelanoma.models.registry import ModelInfo, register_model


@dataclass(frozen=True)
class Arch:
    """One row of the table: how to build and describe a `keras.applications` backbone."""

    name: str
    constructor: str  # attribute of keras.applications
    family: str
    preprocessing: str  # mode of tfmelanoma.models.preprocessing.preprocess
    last_conv_layer: str
    params: int  # at the default size with the default 2-class head
    input_size: int = 224
    min_input_size: int = 32
    skip_layers: tuple[str, ...] = ()


_EFF_SKIPS = (
    "block2a_expand_activation",
    "block3a_expand_activation",
    "block4a_expand_activation",
    "block6a_expand_activation",
)
_RESNET_SKIPS = {
    "resnet50": ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out"),
    "resnet101": ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block23_out"),
    "resnet152": ("conv1_relu", "conv2_block3_out", "conv3_block8_out", "conv4_block36_out"),
}
_DENSE_SKIPS = ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu")
_EFF_SIZES = (224, 240, 260, 300, 380, 456, 528, 600)
_EFF_PARAMS = (
    4_052_133, 6_577_801, 7_771_387, 10_786_609, 17_677_409, 28_517_625, 40_964_753, 64_102_809,
)  # fmt: skip

ARCHITECTURES: tuple[Arch, ...] = (
    Arch("vgg16", "VGG16", "vgg", "caffe", "block5_conv3", 14_715_714,
         skip_layers=("block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")),
    Arch("vgg19", "VGG19", "vgg", "caffe", "block5_conv4", 20_025_410),
    *(
        Arch(n, c, "resnet", "caffe", "conv5_block3_out", p, skip_layers=_RESNET_SKIPS[n])
        for n, c, p in (
            ("resnet50", "ResNet50", 23_591_810),
            ("resnet101", "ResNet101", 42_662_274),
            ("resnet152", "ResNet152", 58_375_042),
        )
    ),
    *(
        Arch(n, c, "resnet_v2", "tf", "post_relu", p)
        for n, c, p in (
            ("resnet50v2", "ResNet50V2", 23_568_898),
            ("resnet101v2", "ResNet101V2", 42_630_658),
            ("resnet152v2", "ResNet152V2", 58_335_746),
        )
    ),
    *(
        Arch(n, c, "densenet", "torch", "relu", p, skip_layers=_DENSE_SKIPS)
        for n, c, p in (
            ("densenet121", "DenseNet121", 7_039_554),
            ("densenet169", "DenseNet169", 12_646_210),
            ("densenet201", "DenseNet201", 18_325_826),
        )
    ),
    *(
        Arch(f"efficientnet_b{i}", f"EfficientNetB{i}", "efficientnet", "none", "top_activation",
             _EFF_PARAMS[i], input_size=_EFF_SIZES[i], skip_layers=_EFF_SKIPS)
        for i in range(8)
    ),
    Arch("mobilenet_v2", "MobileNetV2", "mobilenet", "tf", "out_relu", 2_260_546,
         skip_layers=("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
                      "block_13_expand_relu")),
    # MobileNetV3's last activation has an auto-generated name; Grad-CAM uses its input.
    Arch("mobilenet_v3_small", "MobileNetV3Small", "mobilenet", "none", "conv_1_bn", 940_274),
    Arch("mobilenet_v3_large", "MobileNetV3Large", "mobilenet", "none", "conv_1_bn", 2_998_274),
    Arch("inception_v3", "InceptionV3", "inception", "tf", "mixed10", 21_806_882,
         input_size=299, min_input_size=75),
    Arch("inception_resnet_v2", "InceptionResNetV2", "inception", "tf", "conv_7b_ac", 54_339_810,
         input_size=299, min_input_size=75),
    Arch("xception", "Xception", "xception", "tf", "block14_sepconv2_act", 20_865_578,
         input_size=299, min_input_size=75),
)  # fmt: skip

_ARCH_BY_NAME = {a.name: a for a in ARCHITECTURES}


def set_backbone_trainable(
    base_layers: list[keras.layers.Layer], trainable_from: int | str | None, train_batchnorm: bool
) -> None:
    """Freezes the backbone, or unfreezes it from a layer index / name onwards.

    Args:
        base_layers: the backbone's layers in topological order (no input / head layers).
        trainable_from: None (all frozen), an index into `base_layers` (negative counts from
            the end) or a layer name: that layer and every later one train.
        train_batchnorm: whether unfrozen BatchNorm layers train (False: inference mode).

    Raises:
        ValueError: unknown layer name, index out of range or a value of another type.
    """
    if trainable_from is None:
        start = len(base_layers)
    elif isinstance(trainable_from, str):
        names = [layer.name for layer in base_layers]
        if trainable_from not in names:
            raise ValueError(
                f"trainable_from={trainable_from!r} is not a layer of the backbone; "
                f"first layers: {names[:8]}, last layers: {names[-8:]}"
            )
        start = names.index(trainable_from)
    elif isinstance(trainable_from, int) and not isinstance(trainable_from, bool):
        if not -len(base_layers) <= trainable_from <= len(base_layers):
            raise ValueError(
                f"trainable_from={trainable_from} is outside the backbone's {len(base_layers)} layers"
            )
        start = trainable_from % len(base_layers) if trainable_from < 0 else trainable_from
    else:
        raise ValueError(
            f"trainable_from must be 'auto', None, a layer index or a layer name, got {trainable_from!r}"
        )
    for i, layer in enumerate(base_layers):
        layer.trainable = i >= start
        # Fine-tuning with BatchNorm statistics of a tiny batch wrecks pretrained features.
        if isinstance(layer, keras.layers.BatchNormalization) and not train_batchnorm:
            layer.trainable = False


def transfer_classifier(
    arch: str | Arch,
    num_classes: int = 2,
    input_shape: tuple[int, int, int] | None = None,
    weights: str | None = None,
    trainable_from: int | str | None = "auto",
    dropout: float = 0.2,
    train_batchnorm: bool | str = "auto",
    backbone_options: dict | None = None,
) -> keras.Model:
    """A `keras.applications` backbone + global average pooling + probability head.

    Args:
        arch: a name of `ARCHITECTURES` (e.g. "resnet50") or an `Arch` row.
        num_classes: 1 (sigmoid), 2 (softmax, default) or K classes.
        input_shape: (H, W, 3); default the network's ImageNet size (224 / 299 / EfficientNet's).
        weights: None (random init, the default: nothing is downloaded), "imagenet" (Keras
            downloads the ImageNet weights), or a path to a no-top weights file of the backbone.
        trainable_from: "auto" (frozen backbone when `weights` is given, as in the uncertainty
            paper; fully trainable from random init), None (frozen), an index into the
            backbone's layers or a layer name: that layer and all after it are trained.
        dropout: dropout before the dense head.
        train_batchnorm: train the BatchNorm layers of the unfrozen part. "auto": only from
            random init (without it activations vanish in deep nets); with pretrained weights
            they stay in inference mode, the Keras fine-tuning recipe.
        backbone_options: further keyword arguments of the `keras.applications` constructor,
            e.g. `{alpha: 0.5, minimalistic: true}`: a MobileNetV3Small of 131 k parameters
            (Keras takes any `alpha` from random init, only its published widths with ImageNet
            weights).

    Returns:
        A flat functional `keras.Model`: float32 RGB [0, 255] → probabilities.
    """
    arch = _ARCH_BY_NAME[arch] if isinstance(arch, str) else arch
    check_num_classes(num_classes)
    if trainable_from == "auto":
        trainable_from = None if weights is not None else 0
    if train_batchnorm == "auto":
        train_batchnorm = weights is None
    inputs = image_input(input_shape, default_size=arch.input_size)
    x = preprocess(inputs, arch.preprocessing)
    constructor = getattr(keras.applications, arch.constructor)
    backbone = constructor(
        include_top=False,
        weights=weights,
        input_tensor=x,
        input_shape=tuple(inputs.shape[1:]),
        pooling=None,
        **(backbone_options or {}),
    )
    # The backbone's graph starts at our input and preprocessing layers; leave those out.
    base_layers = [
        layer
        for layer in backbone.layers
        if layer.name != "image" and not layer.name.startswith("preprocess_")
    ]
    set_backbone_trainable(base_layers, trainable_from, train_batchnorm)
    if weights is None and train_batchnorm:
        # Keras's MobileNets keep BatchNorm averages with momentum 0.999, tuned for ImageNet's
        # 10^5+ steps. From random init over a few thousand steps the averages stay near their
        # initial values, and in inference mode the network answers every image alike
        # (validation AUC exactly 0.5 for 8 epochs of a MobileNetV3Small, docs/webdemo.md).
        for layer in base_layers:
            if isinstance(layer, keras.layers.BatchNormalization) and layer.momentum > 0.99:
                layer.momentum = 0.99
    features = keras.layers.GlobalAveragePooling2D(name="head_pool")(backbone.output)
    outputs = classification_head(features, num_classes, dropout)
    return keras.Model(inputs, outputs, name=arch.name)


def _register(arch: Arch) -> None:
    info = ModelInfo(
        name=arch.name,
        family=arch.family,
        task="classification",
        input_size=arch.input_size,
        preprocessing=DESCRIPTIONS[arch.preprocessing],
        last_conv_layer=arch.last_conv_layer,
        params=arch.params,
        paper="uncertainty paper grid / multi-task paper benchmark",
        # Deep ImageNet backbones take seconds to build and save: slow tests.
        tags=("applications", "slow") if arch.params > 8_000_000 else ("applications",),
        min_input_size=arch.min_input_size,
        skip_layers=arch.skip_layers,
        imagenet=True,
    )
    register_model(info)(
        functools.update_wrapper(functools.partial(transfer_classifier, arch), transfer_classifier)
    )


for _arch in ARCHITECTURES:
    _register(_arch)
