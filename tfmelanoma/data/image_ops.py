"""The one pixel path: decode and resize, each as a TensorFlow op and its NumPy/Pillow twin.

Every path that turns an image file or stored bytes into model input goes through here: training
(`data.pipeline` on tf.data, `data.numpy_pipeline` without TensorFlow), evaluation, segmentation,
export parity, and the web demo (`webdemo/worker.js` follows the same contract in JavaScript).

The contract (docs/architecture.md, "Pixel contract"):
- decode: JPEG with the accurate integer IDCT (libjpeg JDCT_ISLOW, what Pillow, Chromium and
  Firefox use; TensorFlow's default fast IDCT differs by up to ~5 levels), other formats as
  stored; uint8 RGB (H, W, 3).
- resize: bilinear, half-pixel centres, no antialiasing, straight to the model's square input
  (aspect ratio not kept); float32 in [0, 255]. Models normalise inside themselves.

TensorFlow is imported only by the `*_tf` functions, so the NumPy twins serve TF-free hosts.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

RESIZE_METHOD = "bilinear"
"""Resize used for training, evaluation and (in JS) the web demo: bilinear, half-pixel centres,
no antialiasing, straight to a square (aspect ratio not kept, as in the ISIC challenge data)."""


def decode_tf(data):
    """Encoded image bytes (a string tensor) -> uint8 (H, W, 3), JPEG with the accurate IDCT.

    TensorFlow's default JPEG decode uses a fast IDCT whose pixels differ from PIL's and the
    browsers' by up to 5 levels (enough to move P(melanoma) by ~0.01); decoding accurately keeps
    training, evaluation and the web demo on the same pixels. Twin: `decode_np`.
    """
    import tensorflow as tf

    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    return image


def decode_np(data: bytes) -> np.ndarray:
    """Encoded image bytes -> uint8 (H, W, 3) with Pillow: the same pixels as `decode_tf`.

    Files a user hands the toolkit directly go through `tfmelanoma.data.images.open_rgb`, which
    names the file in its errors and applies the EXIF orientation as browsers do.
    """
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def resize_tf(image, size: int):
    """Decoded uint8/float image (H, W, 3) -> float32 (size, size, 3) in [0, 255]. Twin:
    `resize_np`."""
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    out = tf.image.resize(image, (size, size), method=RESIZE_METHOD, antialias=False)
    return tf.clip_by_value(out, 0.0, 255.0)


def resize_np(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> float32 (size, size, C), as `resize_tf` (`tf.image.resize(bilinear,
    antialias=False)`).

    Written with NumPy because no maintained NumPy-only library reproduces TensorFlow's
    half-pixel-centre bilinear resize (PIL antialiases when shrinking), and the two pipelines must
    feed a model the same pixels.
    """
    h, w = image.shape[:2]
    if h == w == size:  # half-pixel centres at scale 1 sample every pixel exactly: identity
        return np.array(image, dtype=np.float32)
    image = np.asarray(image, dtype=np.float32)

    def coords(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(size, dtype=np.float64) + 0.5) * (n_in / size) - 0.5
        src = np.clip(src, 0.0, n_in - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, fy = coords(h)
    x0, x1, fx = coords(w)
    top = image[y0][:, x0] * (1 - fx)[None, :, None] + image[y0][:, x1] * fx[None, :, None]
    bottom = image[y1][:, x0] * (1 - fx)[None, :, None] + image[y1][:, x1] * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
    return np.clip(out, 0.0, 255.0)


def resize_antialiased_np(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(H, W, C) -> float32 (h, w, C) in [0, 255], as `tf.image.resize(bilinear, antialias=True)`.

    Pillow's float ("F") mode filters each channel with TensorFlow's antialiasing triangle kernel,
    whose support only widens when shrinking: when enlarging it is plain half-pixel-centre
    bilinear interpolation, equal to `resize_np` up to float rounding (tested), 3-4x faster
    and without holding the GIL. Used for crops that are enlarged (augmentation) and for masks
    and probability maps.

    Args:
        image: uint8 or float array (H, W, C).
        size: side of the square output, or (height, width).
    """
    height, width = (size, size) if isinstance(size, int) else size
    if image.shape[:2] == (height, width):
        return np.array(image, dtype=np.float32)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32), "F").resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        for c in range(image.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0)


def resize_antialiased_tf(image, size: int):
    """(H, W, C) -> float32 (size, size, C) in [0, 255], bilinear with antialiasing. Twin:
    `resize_antialiased_np`.

    The segmentation pipelines' image resize (masks go through `resize_mask_tf`): shrinking a
    full-size dermoscopy image to the model's side without aliasing its lesion border.
    """
    import tensorflow as tf

    out = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    return tf.clip_by_value(out, 0.0, 255.0)


def resize_mask_tf(mask, size: int):
    """Mask (H, W, 1) -> float32 (size, size, 1) by nearest neighbour (stays binary). Twin:
    `resize_mask_np`."""
    import tensorflow as tf

    return tf.image.resize(tf.cast(mask, tf.float32), (size, size), method="nearest")


def resize_mask_np(mask: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> (size, size, C) by nearest neighbour, as `resize_mask_tf`.

    Hand-written (two index arrays) because Pillow's NEAREST picks different source pixels than
    TensorFlow's half-pixel-centre rule `min(floor((i + 0.5) * in / out), in - 1)`.
    """
    h, w = mask.shape[:2]
    rows = np.minimum(np.floor((np.arange(size) + 0.5) * (h / size)).astype(np.int64), h - 1)
    cols = np.minimum(np.floor((np.arange(size) + 0.5) * (w / size)).astype(np.int64), w - 1)
    return mask[rows][:, cols]
