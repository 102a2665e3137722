"""Each augmentation op eagerly and inside `dataset.map`: shape, dtype, range, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfmelanoma.config import AugmentConfig
from tfmelanoma.data import augment as aug

SEED = tf.constant([3, 7], tf.int64)


def _image(h=24, w=32) -> tf.Tensor:
    rng = np.random.default_rng(0)
    return tf.constant(rng.uniform(0, 255, (h, w, 3)).astype(np.float32))


OPS = {
    "random_resized_crop": lambda x, s: aug.random_resized_crop(x, s, 0.5),
    "random_zoom": lambda x, s: aug.random_zoom(x, s, 0.3),
    "random_rotation": lambda x, s: aug.random_rotation(x, s, 0.25),
    "random_flips": lambda x, s: aug.random_flips(x, s, True, True),
    "colour_jitter": lambda x, s: aug.colour_jitter(x, s, 0.2, 0.2, 0.2, 0.05),
    "cutout": lambda x, s: aug.cutout(x, s, 0.3),
    "augment": lambda x, s: aug.augment(
        x, s, dataclasses.replace(AugmentConfig(), cutout=0.2, zoom=0.1)
    ),
}


def _check(out: tf.Tensor, image: tf.Tensor) -> None:
    assert out.shape == image.shape and out.dtype == tf.float32
    values = out.numpy()
    assert np.isfinite(values).all()
    assert values.min() >= 0.0 and values.max() <= 255.0


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_eager(name):
    image = _image()
    out = OPS[name](image, SEED)
    _check(out, image)
    # Same seed, same result; the op really changes the image for some seed.
    np.testing.assert_array_equal(out.numpy(), OPS[name](image, SEED).numpy())
    changed = [
        not np.allclose(OPS[name](image, tf.constant([s, 1], tf.int64)).numpy(), image.numpy())
        for s in range(8)
    ]
    assert any(changed), f"{name} never changed the image"


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_in_dataset_map(name):
    image = _image()
    ds = tf.data.Dataset.from_tensors(image).map(lambda x: OPS[name](x, SEED))
    out = next(iter(ds))
    _check(out, image)
    np.testing.assert_allclose(out.numpy(), OPS[name](image, SEED).numpy(), atol=1e-3)


def test_flips_are_exact_permutations():
    image = _image()
    out = aug.random_flips(image, SEED, True, True).numpy()
    candidates = [
        image.numpy(),
        image.numpy()[:, ::-1],
        image.numpy()[::-1],
        image.numpy()[::-1, ::-1],
    ]
    assert any(np.array_equal(out, c) for c in candidates)


def test_cutout_erases_a_square():
    image = tf.fill([40, 40, 3], 200.0)
    out = aug.cutout(image, SEED, 0.25).numpy()
    erased = (out == 0).all(axis=-1)
    assert 0 < erased.sum() <= 11 * 11
    rows, cols = np.nonzero(erased)
    assert erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()


def test_disabled_config_is_identity():
    image = _image()
    out = aug.augment(image, SEED, AugmentConfig(enabled=False))
    np.testing.assert_array_equal(out.numpy(), image.numpy())


def test_decode_image_matches_pil_exactly(tmp_path):
    """Accurate-IDCT decoding gives PIL's (and the browsers') pixels for a JPEG."""
    import io

    from PIL import Image

    from tfmelanoma.data.image_ops import decode_tf

    rng = np.random.default_rng(1)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (37, 29, 3), dtype=np.uint8)).save(
        buffer, "JPEG", quality=85
    )
    data = buffer.getvalue()
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(decode_tf(tf.constant(data)).numpy(), expected)
    png = io.BytesIO()
    Image.fromarray(expected).save(png, "PNG")
    np.testing.assert_array_equal(decode_tf(tf.constant(png.getvalue())).numpy(), expected)
