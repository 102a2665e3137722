"""Registry entries: the four rows of AER-Net's ablation table plus segmentation_models baselines."""

from __future__ import annotations

import keras

from tfmelanoma.models.registry import ModelInfo, register_model
from tfmelanoma.models.segmentation.unet import build_unet

_PAPER = "Lima & Braz Junior, AER-Net (Attention Efficient Residual U-Net)"
_PREPROCESSING = (
    "RGB [0,255] -> ColourSpace layer (CIELAB by default) scaled to [0,1] inside the model"
)


def _info(
    name: str, family: str, tags: tuple[str, ...], paper: str = _PAPER, imagenet: bool = False
) -> ModelInfo:
    return ModelInfo(
        name=name,
        family=family,
        task="segmentation",
        input_size=256,
        preprocessing=_PREPROCESSING,
        last_conv_layer="mask",
        paper=paper,
        tags=tags,
        imagenet=imagenet,  # the plain U-Nets' own encoder has none
    )


@register_model(_info("unet", "unet", ("ablation:1",)))
def unet(input_shape=None, **kwargs) -> keras.Model:
    """U-Net (Ronneberger et al. 2015) with BatchNorm; AER-Net ablation row 1."""
    return build_unet(input_shape, name="unet", **kwargs)


@register_model(_info("attention_unet", "unet", ("ablation:2",)))
def attention_unet(input_shape=None, **kwargs) -> keras.Model:
    """U-Net with attention gates on every skip (Oktay et al. 2018); ablation row 2."""
    return build_unet(input_shape, attention=True, name="attention_unet", **kwargs)


@register_model(_info("attention_residual_unet", "unet", ("ablation:3",)))
def attention_residual_unet(input_shape=None, **kwargs) -> keras.Model:
    """Attention U-Net with residual conv blocks; ablation row 3."""
    return build_unet(
        input_shape, attention=True, residual=True, name="attention_residual_unet", **kwargs
    )


@register_model(_info("aernet", "unet", ("ablation:4",), imagenet=True))
def aernet(input_shape=None, encoder: str = "efficientnetb1", **kwargs) -> keras.Model:
    """AER-Net: EfficientNet encoder (B1 in the paper) + attention gates + residual decoder.

    Pass `weights="imagenet"` for the paper's pretrained encoder (default None: offline).
    """
    return build_unet(
        input_shape, encoder=encoder, attention=True, residual=True, name="aernet", **kwargs
    )
