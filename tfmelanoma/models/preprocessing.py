"""In-model input normalisation: raw float32 RGB [0, 255] → what each network family expects.

The modes are those of `keras.applications.imagenet_utils.preprocess_input`, rebuilt from
built-in layers (Rescaling, Normalization) plus `ReverseChannels`, so the normalisation is part of
the saved model and every caller (pipeline, TTA, Grad-CAM, TF.js) feeds the same raw pixels.
"""

from __future__ import annotations

import keras

from tfmelanoma.models.layers import ReverseChannels

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
# keras.applications.imagenet_utils "caffe" mode: BGR order, mean in [0, 255], no scaling.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

DESCRIPTIONS = {
    "none": "none in this wrapper (the network normalises [0,255] itself)",
    "unit": "Rescaling [0,255] -> [0,1] in-model",
    "tf": "Rescaling [0,255] -> [-1,1] in-model",
    "torch": "Rescaling to [0,1] then ImageNet mean/std Normalization in-model",
    "caffe": "RGB->BGR then ImageNet BGR mean subtraction in-model",
}


def preprocess(x: keras.KerasTensor, mode: str, name: str = "preprocess") -> keras.KerasTensor:
    """Applies the normalisation `mode` with built-in / registered layers.

    Args:
        x: float32 RGB in [0, 255], (B, H, W, 3).
        mode: one of `DESCRIPTIONS` ("none", "unit", "tf", "torch", "caffe").
        name: prefix of the created layers' names.

    Returns:
        The normalised tensor.

    Raises:
        ValueError: unknown mode.
    """
    if mode == "none":
        return x
    if mode == "unit":
        return keras.layers.Rescaling(1.0 / 255.0, name=f"{name}_rescale")(x)
    if mode == "tf":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=f"{name}_rescale")(x)
    if mode == "torch":
        x = keras.layers.Rescaling(1.0 / 255.0, name=f"{name}_rescale")(x)
        return keras.layers.Normalization(
            mean=list(IMAGENET_MEAN_RGB),
            variance=[s * s for s in IMAGENET_STD_RGB],
            name=f"{name}_normalize",
        )(x)
    if mode == "caffe":
        x = ReverseChannels(name=f"{name}_bgr")(x)
        return keras.layers.Normalization(
            mean=list(CAFFE_MEAN_BGR), variance=[1.0, 1.0, 1.0], name=f"{name}_center"
        )(x)
    raise ValueError(f"unknown preprocessing mode {mode!r}; expected one of {sorted(DESCRIPTIONS)}")
