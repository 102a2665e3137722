"""Opening image files with Pillow, with errors that name the file and say what is wrong.

One place for it: the builders (`tfds_builders.common.read_image`) and the evaluation's folder
input (`evaluation.data.ImageFolderSource`, which decodes each file once and reports all the bad
ones in one error) both open images here. The decoding itself is
`tfmelanoma.data.image_ops.decode_pil`, the pixel contract's.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from tfmelanoma.data.image_ops import decode_pil
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
        return decode_pil(data)  # the pixel contract's decoder (EXIF orientation applied)
    except UnidentifiedImageError:
        raise ImageReadError(
            f"{path}: not an image file ({len(data)} bytes in no format Pillow can decode)"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{path}: truncated or corrupt image ({e})") from None


def unreadable_files_error(messages: list[str], *, shown: int = 20) -> ImageReadError:
    """One ImageReadError for several unreadable files (each `open_rgb` message a line)."""
    lines = "\n".join(messages[:shown])
    more = f"\n... and {len(messages) - shown} more" if len(messages) > shown else ""
    return ImageReadError(
        f"{len(messages)} unreadable image file(s); remove or replace them:\n{lines}{more}"
    )
