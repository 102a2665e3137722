"""Lesion masks read one way everywhere: builders, the tf.data and the NumPy segmentation pipelines.

Masks come as PNG (ISIC), BMP (PH2), JPEG or TIFF (re-packs), with lesion = 255, lesion = 1
(label-map PNGs) or, after lossy compression, grey values near either end. `binarise` maps all
of them to {0, 1}: a mask whose values are all 0 or 1 is taken as it is (thresholding it at half
range would make it all background), anything else is thresholded at half range (> 127).
`read_mask` decodes with Pillow (which reads BMP and TIFF, unlike `tf.io`), reduces colour to one
channel by the channel maximum (a red-on-black mask stays a mask) and refuses a mask whose size
differs from its image's: stretching it would draw the lesion in the wrong place. Pillow only,
no TensorFlow: the tf.data pipeline calls it through `tf.numpy_function`, so there is one
implementation to keep right.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tfmelanoma.errors import LabelError


class MaskReadError(ValueError):
    """A mask file that is missing or not an image; the message names the file."""


def binarise(mask: np.ndarray) -> np.ndarray:
    """One-channel uint8 mask (H, W) -> {0, 1} uint8: 0/1 masks as they are, else > 127."""
    mask = np.asarray(mask)
    if mask.size and mask.max() <= 1:
        return mask.astype(np.uint8)
    return (mask > 127).astype(np.uint8)


def image_size(path: os.PathLike | str) -> tuple[int, int]:
    """(height, width) of an image file from its header (nothing is decoded)."""
    with Image.open(path) as img:
        return img.height, img.width


def check_mask_size(
    mask_path: os.PathLike | str,
    mask_size: tuple[int, int],
    image_path: os.PathLike | str,
    size: tuple[int, int],
) -> None:
    """Raises `LabelError` naming both files and sizes unless the (h, w) sizes are equal."""
    if tuple(mask_size) != tuple(size):
        raise LabelError(
            f"{mask_path}: mask is {mask_size[1]}x{mask_size[0]} (width x height) but its image "
            f"{image_path} is {size[1]}x{size[0]}; a mask must have its image's size "
            "(resizing it would misplace the lesion)"
        )


def read_mask(
    path: os.PathLike | str,
    *,
    image_path: os.PathLike | str | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decodes a mask file to uint8 {0, 1} (H, W), checked against its image's size.

    Args:
        path: PNG, BMP, JPEG, TIFF, ... anything Pillow decodes; any mode (1, L, P, RGB, ...).
        image_path: the image the mask belongs to; its size is read from its header unless
            `size` is given.
        size: the image's (height, width), when already known.

    Raises:
        MaskReadError: the file is missing or not an image, naming it.
        LabelError: the mask's size differs from the image's, naming both files and sizes.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("1", "L"):
                array = np.asarray(img.convert("L"))
            else:  # palette, colour, alpha, 16-bit: the brightest channel marks the lesion
                array = np.asarray(img.convert("RGB")).max(axis=-1)
    except FileNotFoundError:
        raise MaskReadError(f"{path}: mask file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise MaskReadError(f"{path}: not a readable mask ({type(e).__name__}: {e})") from None
    if image_path is not None or size is not None:
        expected = tuple(size) if size is not None else image_size(image_path)
        check_mask_size(path, array.shape[:2], image_path or "", expected)
    return binarise(array)
