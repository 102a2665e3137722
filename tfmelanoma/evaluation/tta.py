"""Test-time augmentation as in the multi-class paper (Steppan & Hanke, section III-F).

The image is zoomed by a fixed factor (1.05), the four corner crops of the original size are
taken, and each is also mirrored: 8 augmented views. The TTA prediction is
`beta * p(plain) + (1 - beta) * mean_v p(view_v)` with beta = 0.4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfmelanoma.evaluation.inference import Predictor, as_predictor


@dataclass(frozen=True)
class TTAConfig:
    """TTA settings.

    Attributes:
        zoom: fixed zoom factor (>= 1) before the corner crops.
        beta: weight of the plain prediction; the augmented mean gets 1 - beta.
        flip: add the horizontal mirror of each corner crop (8 views instead of 4).
        corners: use the four corner crops; False uses the centre crop only.
    """

    zoom: float = 1.05
    beta: float = 0.4
    flip: bool = True
    corners: bool = True

    def __post_init__(self) -> None:
        if self.zoom < 1.0:
            raise ValueError(f"TTAConfig.zoom must be >= 1, got {self.zoom}")
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"TTAConfig.beta must be in [0, 1], got {self.beta}")


def tta_views(images, config: TTAConfig = TTAConfig()) -> list[np.ndarray]:
    """The augmented views of an image batch (the plain batch is not included).

    Args:
        images: (B, H, W, 3) float32 in [0, 255].
        config: zoom, flip and crop settings.

    Returns:
        List of (B, H, W, 3) float32 batches: corner crops (top-left, top-right, bottom-left,
        bottom-right) of the zoomed image, each followed by its mirror when `flip`.
    """
    from tfmelanoma.data.image_ops import resize_np

    x = np.asarray(images, dtype=np.float32)
    h, w = x.shape[1:3]
    zh, zw = max(h, round(h * config.zoom)), max(w, round(w * config.zoom))
    # The data pipeline's resize (bilinear, no antialias), in NumPy: every Keras backend.
    zoomed = np.stack([resize_np(image, (zh, zw)) for image in x]) if len(x) else x
    if config.corners:
        offsets = [(0, 0), (0, zw - w), (zh - h, 0), (zh - h, zw - w)]
    else:
        offsets = [((zh - h) // 2, (zw - w) // 2)]
    views = []
    for dy, dx in offsets:
        crop = zoomed[:, dy : dy + h, dx : dx + w]
        views.append(crop)
        if config.flip:
            views.append(crop[:, :, ::-1])
    return views


def tta_predict(model, images, config: TTAConfig = TTAConfig(), batch_size: int = 32) -> np.ndarray:
    """TTA probabilities: beta * plain + (1 - beta) * mean over the augmented views.

    Args:
        model: a Keras model or a `Predictor`.
        images: (B, H, W, 3) float32 in [0, 255].
        config: TTA settings.
        batch_size: images per model call.

    Returns:
        (B, K) probabilities (rows still sum to 1: a convex combination of distributions).
    """
    predict = as_predictor(model, batch_size)
    plain = predict(images)
    augmented = np.mean([predict(v) for v in tta_views(images, config)], axis=0)
    return config.beta * plain + (1.0 - config.beta) * augmented


def tta_predictor(model, config: TTAConfig = TTAConfig(), batch_size: int = 32) -> Predictor:
    """A `Predictor` applying `tta_predict` with a fixed config."""
    return lambda images: tta_predict(model, images, config, batch_size)
