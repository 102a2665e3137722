"""The pixel contract (docs/architecture.md): every path from an image file, or from the bytes a
builder stored, to pixels decodes to the same uint8 RGB, EXIF orientation applied; the two
resizes agree within 1e-3.

Paths: `image_ops.decode_tf` (eagerly and inside `tf.data`), `image_ops.decode_np`,
`data.images.open_rgb`, the evaluation's `--images-dir` reader (`ImageFolderSource`, every
backend), export parity's `preprocess_file`, and the builders' read path
(`tfds_builders.common.read_image`). The browser (`webdemo/worker.js`) decodes with
`createImageBitmap(..., {imageOrientation: "from-image"})`: EXIF applied, as here.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from export.parity import preprocess_file
from tfds_builders.common import read_image
from tfmelanoma.data import image_ops
from tfmelanoma.data.images import open_rgb
from tfmelanoma.data.sample import sample_dir
from tfmelanoma.evaluation.data import ImageFolderSource

REAL_JPEG = sorted((sample_dir() / "images").glob("*.jpg"))[0]


def _synthetic(height: int = 45, width: int = 61) -> np.ndarray:
    """Smooth gradients plus noise: JPEG blocks with real high-frequency content."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(3)
    rgb = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (height + width)], -1)
    return np.clip(rgb + rng.normal(0, 25, rgb.shape), 0, 255).astype(np.uint8)


def _encode(array: np.ndarray, fmt: str, exif: bytes | None = None, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **({"exif": exif} if exif else {}), **kw)
    return buf.getvalue()


def _encode_image(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _exif(orientation: int, big_endian: bool = False) -> bytes:
    """An EXIF block (as Pillow's `save(exif=...)` takes it) holding only the orientation."""
    if not big_endian:
        exif = Image.Exif()
        exif[image_ops.EXIF_ORIENTATION] = orientation
        return exif.tobytes()
    # "MM": one IFD0 entry, tag 0x0112, type SHORT, count 1, value left-aligned; no next IFD.
    entry = struct.pack(">HHIHH", image_ops.EXIF_ORIENTATION, 3, 1, orientation, 0)
    return (
        b"Exif\x00\x00MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + b"\0" * 4
    )


FILES = {
    "real_jpeg": lambda: REAL_JPEG.read_bytes(),
    "synthetic_jpeg": lambda: _encode(_synthetic(), "JPEG", quality=85),
    "synthetic_jpeg_444": lambda: _encode(_synthetic(), "JPEG", quality=95, subsampling=0),
    "png": lambda: _encode(_synthetic(), "PNG"),
    "palette_png": lambda: _encode_image(Image.fromarray(_synthetic()).convert("P"), "PNG"),
    "grey_jpeg": lambda: _encode_image(Image.fromarray(_synthetic()).convert("L"), "JPEG"),
    **{
        f"jpeg_exif_{o}": (lambda o=o: _encode(_synthetic(), "JPEG", _exif(o), quality=90))
        for o in range(1, 9)
    },
    "jpeg_exif_6_big_endian": lambda: _encode(_synthetic(), "JPEG", _exif(6, True), quality=90),
    "png_exif_8": lambda: _encode(_synthetic(), "PNG", _exif(8)),
}


@pytest.fixture(params=sorted(FILES))
def image_file(request, tmp_path) -> Path:
    data = FILES[request.param]()
    suffix = ".png" if data.startswith(b"\x89PNG") else ".jpg"
    folder = tmp_path / "images" / "melanoma"  # the `--images-dir` layout
    folder.mkdir(parents=True)
    path = folder / f"{request.param}{suffix}"
    path.write_bytes(data)
    return path


def _every_decode(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    in_tf_data = tf.data.Dataset.from_tensors(tf.io.read_file(str(path))).map(image_ops.decode_tf)
    out = {
        "decode_tf": image_ops.decode_tf(tf.constant(data)).numpy(),
        "decode_tf in tf.data": next(iter(in_tf_data)).numpy(),
        "decode_np": image_ops.decode_np(data),
        "open_rgb": np.asarray(open_rgb(path)),
        "evaluate --images-dir": ImageFolderSource(path.parents[1], ["melanoma"])[0]["image"],
        "builders (read_image)": read_image(path).array,
    }
    h, w = out["decode_np"].shape[:2]
    # Export parity resizes too; at the decoded size the resize is exact (half-pixel centres).
    out["export parity"] = preprocess_file(path, (h, w)).astype(np.uint8)
    return out


def test_every_decode_path_gives_the_same_pixels(image_file):
    decoded = _every_decode(image_file)
    reference = decoded["decode_np"]
    assert reference.dtype == np.uint8 and reference.ndim == 3 and reference.shape[-1] == 3
    for path, pixels in decoded.items():
        assert pixels.dtype == np.uint8, path
        np.testing.assert_array_equal(pixels, reference, err_msg=path)


def test_exif_orientation_is_applied_as_pillow_and_browsers_do():
    upright = _synthetic()
    for orientation in range(1, 9):
        data = _encode(upright, "PNG", _exif(orientation))  # lossless: compare with the transform
        want = np.asarray(
            Image.open(io.BytesIO(data)).transpose(_PIL_TRANSPOSE[orientation])
            if orientation > 1
            else Image.open(io.BytesIO(data))
        )
        assert int(image_ops.exif_orientation_tf(tf.constant(data))) == orientation
        np.testing.assert_array_equal(image_ops.decode_tf(tf.constant(data)).numpy(), want)
        np.testing.assert_array_equal(image_ops.decode_np(data), want)
    sideways = image_ops.decode_np(_encode(upright, "JPEG", _exif(6)))
    assert sideways.shape[:2] == upright.shape[1::-1]  # 6: turned 90 degrees clockwise
    for junk in (b"", b"not an image", _encode(upright, "JPEG")[:300]):  # no EXIF: as stored
        assert int(image_ops.exif_orientation_tf(tf.constant(junk))) == 1


_PIL_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def test_stored_bytes_decode_the_same_on_every_reader():
    """What a builder stores (TFDS re-encodes the decoded array as JPEG, no EXIF): tf.data
    (`decode_tf`), the NumPy readers (`decode_np`) and TFDS's own NumPy decoder agree; TFDS's
    TensorFlow decoder (fast IDCT) does not, which is why the toolkit reads images undecoded."""
    import tensorflow_datasets as tfds

    feature = tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg")
    rotated = _encode(_synthetic(), "JPEG", _exif(6), quality=90)  # a phone photo, say
    for original in (REAL_JPEG.read_bytes(), rotated):
        stored = feature.encode_example(image_ops.decode_np(original))
        # No EXIF in what is stored, so the readers' `decode_tf(exif=False)` is exact.
        assert b"Exif" not in stored and int(image_ops.exif_orientation_tf(stored)) == 1
        reference = image_ops.decode_np(stored)
        for exif in (True, False):
            decoded = image_ops.decode_tf(tf.constant(stored), exif=exif).numpy()
            np.testing.assert_array_equal(decoded, reference)
    np.testing.assert_array_equal(feature.decode_example_np(stored), reference)
    fast = feature.decode_example(tf.constant(stored)).numpy()
    assert np.abs(fast.astype(int) - reference).max() > 0


@pytest.mark.parametrize("size", [16, 64, 300])
@pytest.mark.parametrize("name", ["real_jpeg", "png", "jpeg_exif_6"])
def test_resize_twins_agree(name, size):
    image = image_ops.decode_np(FILES[name]())
    want = image_ops.resize_tf(tf.constant(image), size).numpy()
    got = image_ops.resize_np(image, size)
    assert got.shape == want.shape == (size, size, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-3)
