"""Opening image files with Pillow, with errors that name the file and say what is wrong.

One place for it: the builders (`tfds_builders.common.read_image`) and the evaluation's folder
input (`evaluation.data.images_dir_dataset`, which checks every file before predicting and
reports all the bad ones at once) both open images here.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from tfmelanoma.errors import ImageReadError

# Decompression-bomb guard: PIL's default limit is ~89 Mpx; ISIC originals stay far below.
Image.MAX_IMAGE_PIXELS = 200_000_000


def open_rgb(path: os.PathLike | str) -> Image.Image:
    """Decodes an image file to an RGB Pillow image, EXIF orientation applied.

    Raises:
        ImageReadError: missing, empty, truncated or not an image (the file and reason named).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image file not found") from None
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if not data:
        raise ImageReadError(f"{path}: empty file (0 bytes), not an image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return ImageOps.exif_transpose(img).convert("RGB")
    except UnidentifiedImageError:
        raise ImageReadError(
            f"{path}: not an image file ({len(data)} bytes in no format Pillow can decode)"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{path}: truncated or corrupt image ({e})") from None


def check_images(paths: Iterable[os.PathLike | str], *, shown: int = 20) -> None:
    """Decodes every file once; raises one ImageReadError listing every bad one.

    Raises:
        ImageReadError: naming each unreadable file and why (the first `shown`, then a count).
    """
    bad = []
    for path in paths:
        try:
            open_rgb(path)
        except ImageReadError as e:
            bad.append(str(e))
    if bad:
        lines = "\n".join(bad[:shown])
        more = f"\n... and {len(bad) - shown} more" if len(bad) > shown else ""
        raise ImageReadError(
            f"{len(bad)} unreadable image file(s); remove or replace them:\n{lines}{more}"
        )
