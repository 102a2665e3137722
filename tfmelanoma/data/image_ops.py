"""The one pixel path: decode and resize, each as a TensorFlow op and its NumPy/Pillow twin.

Every path that turns an image file or stored bytes into model input goes through here: training
(`data.pipeline` on tf.data, `data.numpy_pipeline` without TensorFlow), evaluation, segmentation,
export parity, and the web demo (`webdemo/worker.js` follows the same contract in JavaScript).

The contract (docs/architecture.md, "Pixel contract"):
- decode: JPEG with the accurate integer IDCT (libjpeg JDCT_ISLOW, what Pillow, Chromium and
  Firefox use; TensorFlow's default fast IDCT differs by up to ~5 levels), other formats as
  stored; uint8 RGB (H, W, 3); the EXIF orientation of a JPEG (APP1) or PNG (eXIf) applied, as
  browsers do (`createImageBitmap(..., {imageOrientation: "from-image"})`) and phone photos need.
- resize: bilinear, half-pixel centres, no antialiasing, straight to the model's square input
  (aspect ratio not kept); float32 in [0, 255]. Models normalise inside themselves.

TensorFlow is imported only by the `*_tf` functions, so the NumPy twins serve TF-free hosts.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

RESIZE_METHOD = "bilinear"
"""Resize used for training, evaluation and (in JS) the web demo: bilinear, half-pixel centres,
no antialiasing, straight to a square (aspect ratio not kept, as in the ISIC challenge data)."""


def decode_tf(data, *, exif: bool = True):
    """Encoded image bytes (a string tensor) -> uint8 (H, W, 3), JPEG with the accurate IDCT.

    TensorFlow's default JPEG decode uses a fast IDCT whose pixels differ from PIL's and the
    browsers' by up to 5 levels (enough to move P(melanoma) by ~0.01); decoding accurately keeps
    training, evaluation and the web demo on the same pixels. TensorFlow ignores EXIF, so the
    orientation is read here (`exif_orientation_tf`) and applied. Twin: `decode_np`.

    Args:
        data: encoded bytes (scalar string tensor).
        exif: apply the EXIF orientation. Readers of the toolkit's own prepared records pass
            False: builders store decoded, already oriented arrays, which TFDS encodes without
            EXIF (tested), and the parse costs ~50 small ops per image (~1.2 ms on a 45 KB
            600 px JPEG whose decode takes 1.6 ms). Users' files need True.
    """
    import tensorflow as tf

    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )
    if exif:
        image = _orient_tf(image, exif_orientation_tf(data))
    image.set_shape([None, None, 3])
    return image


def decode_pil(data) -> Image.Image:
    """Encoded image bytes -> RGB Pillow image, EXIF orientation applied (`decode_np`'s core).

    Raises:
        PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError: as Pillow does;
            `tfmelanoma.data.images.open_rgb` turns them into errors naming the file.
    """
    with Image.open(io.BytesIO(bytes(data))) as img:
        img.load()
        if img.format in ("JPEG", "MPO", "PNG"):  # the formats `exif_orientation_tf` reads
            img = ImageOps.exif_transpose(img)
        return img.convert("RGB")


def decode_np(data) -> np.ndarray:
    """Encoded image bytes -> uint8 (H, W, 3) with Pillow: the same pixels as `decode_tf`.

    Files a user hands the toolkit directly go through `tfmelanoma.data.images.open_rgb`, which
    decodes here and names the file in its errors.
    """
    return np.asarray(decode_pil(data))


EXIF_ORIENTATION = 0x0112
"""The EXIF tag holding the orientation (1 = as stored ... 8; TIFF 6.0, EXIF 2.3 section 4.6.4)."""

_HEAD = 1 << 16  # APP1 (EXIF) is at most 64 KiB and comes before the image data
_MAX_ENTRIES = 64  # IFD0 entries searched for the orientation (cameras write ~10-20)


def exif_orientation_tf(data):
    """The EXIF orientation (int32 1-8) of JPEG (APP1 "Exif") or PNG (eXIf) bytes; 1 when absent.

    Parsed with TensorFlow ops, so it runs inside `tf.data`: the TIFF header after the marker
    gives the byte order and IFD0's offset, and IFD0's entries are searched for tag 0x0112.
    Anything malformed reads as 1 (as stored), as Pillow's `exif_transpose` treats it.
    """
    import tensorflow as tf

    head = tf.strings.substr(data, 0, _HEAD)
    b = tf.io.decode_raw(head, tf.uint8)
    n = tf.size(b, out_type=tf.int64)
    b = tf.concat([b, tf.zeros([1], tf.uint8)], 0)  # index 0 exists even for b""
    jpeg = tf.io.is_jpeg(data)
    png = tf.equal(tf.strings.substr(data, 0, 8), b"\x89PNG\r\n\x1a\n")
    marker = tf.where(jpeg, tf.constant(b"Exif\x00\x00"), tf.constant(b"eXIf"))
    parts = tf.strings.split(head, sep=marker, maxsplit=1)
    found = tf.size(parts) > 1
    before = tf.concat([parts, [b""]], 0)[0]  # split("") is empty
    pos = tf.cast(tf.strings.length(before), tf.int64)  # where the marker starts

    def byte(i):  # -1 outside the bytes; gathered as uint8, so only the few read are widened
        inside = (i >= 0) & (i < n)
        value = tf.cast(tf.gather(b, tf.where(inside, i, 0)), tf.int64)
        return tf.where(inside, value, -1)

    tiff = pos + tf.where(jpeg, tf.constant(6, tf.int64), 4)
    # JPEG: the marker opens an APP1 segment (FF E1, 2 length bytes); PNG: a chunk's type.
    app1 = tf.equal(byte(pos - 4), 0xFF) & tf.equal(byte(pos - 3), 0xE1)
    little = tf.equal(byte(tiff), 0x49) & tf.equal(byte(tiff + 1), 0x49)  # "II"
    big = tf.equal(byte(tiff), 0x4D) & tf.equal(byte(tiff + 1), 0x4D)  # "MM"

    def u16(i):
        return tf.where(little, byte(i) + 256 * byte(i + 1), 256 * byte(i) + byte(i + 1))

    def u32(i):
        return tf.where(little, u16(i) + 65536 * u16(i + 2), 65536 * u16(i) + u16(i + 2))

    ifd = tiff + u32(tiff + 4)
    k = tf.range(_MAX_ENTRIES, dtype=tf.int64)
    entries = ifd + 2 + 12 * k
    hit = (k < u16(ifd)) & tf.equal(u16(entries), EXIF_ORIENTATION)
    value = u16(tf.gather(entries, tf.argmax(tf.cast(hit, tf.int32))) + 8)
    ok = (
        found
        & ((jpeg & app1) | png)
        & (little | big)
        & tf.reduce_any(hit)
        & (value >= 1)
        & (value <= 8)
    )
    return tf.cast(tf.where(ok, value, 1), tf.int32)


def _orient_tf(image, orientation):
    """Applies an EXIF orientation as Pillow's `ImageOps.exif_transpose` does."""
    import tensorflow as tf

    def transpose():
        return tf.transpose(image, [1, 0, 2])

    branches = [
        lambda: image,  # 1: as stored
        lambda: tf.image.flip_left_right(image),  # 2: mirrored
        lambda: tf.image.rot90(image, 2),  # 3: upside down
        lambda: tf.image.flip_up_down(image),  # 4: mirrored upside down
        transpose,  # 5: Pillow's TRANSPOSE
        lambda: tf.image.rot90(image, 3),  # 6: Pillow's ROTATE_270 (90 degrees clockwise)
        lambda: tf.image.rot90(transpose(), 2),  # 7: Pillow's TRANSVERSE
        lambda: tf.image.rot90(image, 1),  # 8: Pillow's ROTATE_90 (counter-clockwise)
    ]
    return tf.switch_case(orientation - 1, branches)


def resize_tf(image, size: int):
    """Decoded uint8/float image (H, W, 3) -> float32 (size, size, 3) in [0, 255]. Twin:
    `resize_np`."""
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    out = tf.image.resize(image, (size, size), method=RESIZE_METHOD, antialias=False)
    return tf.clip_by_value(out, 0.0, 255.0)


def resize_np(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(H, W, C) -> float32 (size, size, C) in [0, 255], as `resize_tf` (`tf.image.resize(bilinear,
    antialias=False)`); `size` may be (height, width).

    Written with NumPy because no maintained NumPy-only library reproduces TensorFlow's
    half-pixel-centre bilinear resize (PIL antialiases when shrinking), and the two pipelines must
    feed a model the same pixels.
    """
    height, width = (size, size) if isinstance(size, int) else size
    h, w = image.shape[:2]
    if (h, w) == (height, width):  # half-pixel centres at scale 1 sample every pixel: identity
        return np.array(image, dtype=np.float32)
    image = np.asarray(image, dtype=np.float32)

    def coords(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0.0, n_in - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, fy = coords(h, height)
    x0, x1, fx = coords(w, width)
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
