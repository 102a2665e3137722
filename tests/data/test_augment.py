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


def test_mixup_blends_images_targets_and_weights_alike():
    """Each output is lam * itself + (1 - lam) * its predecessor in the batch, with one lam per
    example shared by image, target and weight; the same seed gives the same batch."""
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (6, 4, 4, 3)), tf.float32)
    targets = tf.one_hot([0, 1, 1, 0, 1, 0], 2)
    weights = tf.constant([1.0, 2.0, 2.0, 1.0, 2.0, 1.0])
    seed = tf.constant([3, 7], tf.int64)
    x, y, w = aug.mix((images, targets, weights), seed, mixup=0.4)
    x2, _, _ = aug.mix((images, targets, weights), seed, mixup=0.4)
    np.testing.assert_array_equal(x.numpy(), x2.numpy())
    t, tp = targets.numpy()[:, 1], np.roll(targets.numpy()[:, 1], 1)
    differ = t != tp  # where the targets differ, y = lam t + (1 - lam) t_prev gives lam
    lam = (y.numpy()[differ, 1] - tp[differ]) / (t[differ] - tp[differ])
    assert np.all((lam >= 0) & (lam <= 1)) and np.ptp(lam) > 0  # one draw per example
    expected = (
        lam[:, None, None, None] * images.numpy()[differ]
        + (1 - lam[:, None, None, None]) * np.roll(images.numpy(), 1, axis=0)[differ]
    )
    np.testing.assert_allclose(x.numpy()[differ], expected, rtol=1e-5, atol=1e-3)
    wp = np.roll(weights.numpy(), 1)[differ]
    np.testing.assert_allclose(
        w.numpy()[differ], lam * weights.numpy()[differ] + (1 - lam) * wp, rtol=1e-5
    )
    np.testing.assert_allclose(y.numpy().sum(axis=1), 1.0, rtol=1e-6)


def test_mixup_in_the_training_stream_is_reproducible_and_resumable():
    """tf pipeline with augment.mixup: same seed -> same batches; start_epoch=1 replays epoch 2."""
    from tfmelanoma.data.pipeline import training_dataset

    rng = np.random.default_rng(1)
    source = tf.data.Dataset.from_tensor_slices(
        {
            "image": [
                tf.io.encode_png(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).numpy()
                for _ in range(8)
            ],
            "label": np.array([0, 1] * 4, np.int64),
        }
    )
    config = AugmentConfig(enabled=True, crop_scale=1.0, rotation=0.0, mixup=0.3)
    kwargs = dict(image_size=8, batch_size=4, num_classes=2, augment_config=config, seed=5)
    ds, steps = training_dataset(source, **kwargs)
    first = [b for b in ds.take(2 * steps).as_numpy_iterator()]
    again = [b for b in training_dataset(source, **kwargs)[0].take(2 * steps).as_numpy_iterator()]
    resumed = [
        b
        for b in training_dataset(source, start_epoch=1, **kwargs)[0]
        .take(steps)
        .as_numpy_iterator()
    ]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    for a, b in zip(first[steps:], resumed, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    soft = np.concatenate([b[1][:, 1] for b in first])
    assert ((soft > 0) & (soft < 1)).any()  # targets are mixed, not only 0 and 1


@pytest.mark.parametrize("pipeline", ["numpy", "grain", "tf_cached"])
def test_mixup_is_refused_by_pipelines_without_it(pipeline):
    from tfmelanoma.config import ConfigError, load_config
    from tfmelanoma.training.inputs import make_inputs

    config = load_config(None, ["augment.mixup=0.2"])
    with pytest.raises(
        ValueError,
        match=rf"augment.mixup=0.2, augment.cutmix=0.0 need data.pipeline=tf .*{pipeline}",
    ):
        make_inputs(config, pipeline, None, None, None, start_epoch=0)
    with pytest.raises(ConfigError, match=r"augment.mixup=-1.0: expected a number >= 0"):
        load_config(None, ["augment.mixup=-1"])
    with pytest.raises(ConfigError, match=r"augment.cutmix=nan: expected a number >= 0"):
        load_config(None, ["augment.cutmix=.nan"])
    for task in ("segmentation", "multitask"):
        with pytest.raises(
            ConfigError, match=rf"batch mixing is for run.task=classification, not '{task}'"
        ):
            load_config(None, ["augment.cutmix=1", f"run.task={task}"])


def test_cutmix_pastes_one_box_and_mixes_targets_by_its_area():
    """Each output image is itself outside one axis-aligned box and its predecessor inside it;
    the target's weight on itself is the fraction of its own pixels kept."""
    n, size = 8, 16
    images = tf.constant(
        np.arange(n, dtype=np.float32)[:, None, None, None]
        * np.ones((1, size, size, 3), np.float32)
    )
    targets = tf.one_hot(np.arange(n), n)  # a class per image: the target shows each share
    x, y = aug.mix((images, targets), tf.constant([1, 2], tf.int64), cutmix=1.0)
    x, y = x.numpy()[..., 0], y.numpy()
    for i in range(n):
        own, pasted = x[i] == i, x[i] == (i - 1) % n
        assert np.all(own | pasted)
        if pasted.any():
            rows, cols = np.nonzero(pasted)
            box = pasted[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert box.all() and box.sum() == pasted.sum()  # one rectangle
        np.testing.assert_allclose(y[i, i], own.mean(), atol=1e-6)
        np.testing.assert_allclose(y[i, (i - 1) % n], pasted.mean(), atol=1e-6)
    assert 0 < np.mean([np.mean(x[i] != i) for i in range(n)]) < 1


def test_mixup_and_cutmix_together_switch_per_batch():
    images = tf.constant(
        np.arange(4, dtype=np.float32)[:, None, None, None] * np.ones((1, 8, 8, 3), np.float32)
    )
    targets = tf.one_hot(np.arange(4), 4)
    kinds = set()
    for s in range(20):
        x, _ = aug.mix((images, targets), tf.constant([s, 0], tf.int64), mixup=0.5, cutmix=1.0)
        whole = np.isin(x.numpy(), np.arange(4)).all()  # CutMix keeps pixel values whole
        kinds.add("cutmix" if whole else "mixup")
    assert kinds == {"cutmix", "mixup"}
