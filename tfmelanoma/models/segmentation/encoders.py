"""Encoders for the U-Net family, as data: where each backbone's skip features live, by name.

An encoder turns the colour-converted input (channels in [0, 1]) into a bottleneck tensor and a
list of skip tensors from the highest resolution (stride 2) to the lowest (stride 16). Skips are
picked by layer **name** so a Keras upgrade that inserts a layer cannot silently shift them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import keras

# Keras EfficientNets share their block naming; stride of each skip in the comments.
_EFFICIENTNET_SKIPS = (
    "block2a_expand_activation",  # 1/2
    "block3a_expand_activation",  # 1/4
    "block4a_expand_activation",  # 1/8
    "block6a_expand_activation",  # 1/16
)
_KERAS_EFFICIENTNETS = {
    "efficientnetb0": "EfficientNetB0",
    "efficientnetb1": "EfficientNetB1",
    "efficientnetb2": "EfficientNetB2",
    "efficientnetb3": "EfficientNetB3",
    "efficientnetb4": "EfficientNetB4",
}
SM_PREFIX = "sm:"


@dataclass(frozen=True)
class EncoderOutputs:
    """What an encoder hands to the decoder.

    Attributes:
        bottleneck: lowest-resolution features (stride 32 for pretrained backbones).
        skips: skip features, highest resolution first.
    """

    bottleneck: keras.KerasTensor
    skips: list


def encoder_names() -> list[str]:
    """Names accepted by `build_encoder` besides "sm:<segmentation_models backbone>"."""
    return [*_KERAS_EFFICIENTNETS, "efficientnet_lite0"]


def import_segmentation_models():
    """Imports `segmentation_models` on the TF backend (SM_FRAMEWORK must be set before import)."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "segmentation_models (sm_unet, sm_fpn, sm:<backbone> encoders) needs the TensorFlow "
            f"Keras backend; the backend is {keras.backend.backend()!r}"
        )
    os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
    import segmentation_models as sm  # noqa: PLC0415  (optional, heavy, env-dependent import)

    return sm


def build_encoder(name: str, x: keras.KerasTensor, weights: str | None) -> EncoderOutputs:
    """Runs a pretrained-style backbone on `x` and returns its bottleneck and named skips.

    Args:
        name: "efficientnetb0" ... "efficientnetb4" (keras.applications), "efficientnet_lite0"
            (this project's registry) or "sm:<backbone>" (e.g. "sm:resnet34").
        x: colour-converted input, channels in [0, 1].
        weights: None (random) or "imagenet" (downloads; needs internet once).

    Returns:
        `EncoderOutputs` with the bottleneck (stride 32) and four skips (strides 2..16).

    Raises:
        ValueError: unknown encoder name.
    """
    key = name.lower()
    if key in _KERAS_EFFICIENTNETS:
        # Keras EfficientNets rescale and normalise [0, 255] inputs themselves.
        pixels = keras.layers.Rescaling(255.0, name="encoder_to_255")(x)
        app = getattr(keras.applications, _KERAS_EFFICIENTNETS[key])
        backbone = app(include_top=False, weights=weights, input_tensor=pixels)
        skips = [backbone.get_layer(n).output for n in _EFFICIENTNET_SKIPS]
        return EncoderOutputs(backbone.get_layer("top_activation").output, skips)
    if key == "efficientnet_lite0":
        return _efficientnet_lite0(x, weights)
    if key.startswith(SM_PREFIX):
        return _sm_backbone(name[len(SM_PREFIX) :], x, weights)
    raise ValueError(
        f"unknown encoder {name!r}; expected 'plain', one of {encoder_names()} or "
        f"'sm:<backbone>' (segmentation_models backbone, e.g. 'sm:resnet34')"
    )


def _sm_backbone(backbone_name: str, x, weights) -> EncoderOutputs:
    sm = import_segmentation_models()
    if backbone_name not in sm.Backbones.models_names():
        raise ValueError(
            f"unknown segmentation_models backbone {backbone_name!r}; "
            f"known: {', '.join(sm.Backbones.models_names())}"
        )
    # The classification_models ResNets normalise with an input BatchNorm ("bn_data"), so they
    # take [0, 255] like every other model here; other backbones expect their own preprocessing.
    pixels = keras.layers.Rescaling(255.0, name="encoder_to_255")(x)
    # classification_models cannot take an intermediate tensor (its `input_tensor` path calls
    # a Keras 2 backend API), so the backbone gets its own input and runs as a nested model.
    get_backbone = sm.inject_global_submodules(sm.Backbones.get_backbone)
    backbone = get_backbone(
        backbone_name, input_shape=tuple(x.shape[1:]), weights=weights, include_top=False
    )
    skips = []
    for ref in sm.Backbones.get_feature_layers(backbone_name, n=4):
        # segmentation_models' own table gives names for most backbones, indices for a few.
        layer = backbone.get_layer(ref) if isinstance(ref, str) else backbone.layers[ref]
        skips.append(layer.output)
    features = keras.Model(
        backbone.input, [backbone.output, *skips[::-1]], name=f"encoder_{backbone_name}"
    )(pixels)
    return EncoderOutputs(features[0], list(features[1:]))


def _efficientnet_lite0(x, weights) -> EncoderOutputs:
    # The registry model follows the project contract (RGB [0, 255] in, normalised inside), so
    # its backbone (include_head=False) runs nested on the rescaled input; skips come from its
    # ModelInfo.skip_layers (the Keras EfficientNet names), falling back to those names.
    from tfmelanoma.models.registry import create_model, get_model_info, list_models  # noqa: PLC0415

    if "efficientnet_lite0" not in list_models():
        raise ValueError(
            "encoder 'efficientnet_lite0' needs the registry model 'efficientnet_lite0', which is "
            "not registered in this installation; use an 'efficientnetb0'..'efficientnetb4' encoder"
        )
    backbone = create_model(
        "efficientnet_lite0",
        input_shape=tuple(x.shape[1:]),
        weights=weights,
        include_head=False,
        trainable_from=0,  # fine-tune the whole encoder, as AER-Net does
        train_batchnorm=True,
    )
    skip_names = tuple(getattr(get_model_info("efficientnet_lite0"), "skip_layers", ()) or ())
    skip_names = skip_names or _EFFICIENTNET_SKIPS
    names = {layer.name for layer in backbone.layers}
    missing = [n for n in skip_names if n not in names]
    if missing:
        raise ValueError(f"efficientnet_lite0 has no skip layer(s) {missing}")
    outputs = [backbone.get_layer(n).output for n in skip_names]
    pixels = keras.layers.Rescaling(255.0, name="encoder_to_255")(x)
    features = keras.Model(
        backbone.input, [backbone.output, *outputs], name="encoder_efficientnet_lite0"
    )(pixels)
    return EncoderOutputs(features[0], list(features[1:]))
