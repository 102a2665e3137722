"""Prediction over tf.data datasets of example dicts (the `tfmelanoma.datasets` contract)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfmelanoma.evaluation import data

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
IDS = [f"ISIC_{i}" for i in range(5)]


def _dicts(encoded: bool = False, label_key: str = "label") -> tf.data.Dataset:
    images = [tf.io.encode_png(im).numpy() for im in IMAGES] if encoded else IMAGES
    return tf.data.Dataset.from_tensor_slices(
        {"image": images, label_key: np.arange(5) % 2, "image_id": IDS}
    )


def _mean_red(batch: np.ndarray) -> np.ndarray:
    """A predictor that exposes what it was fed: P(melanoma) = mean red value / 255."""
    p = batch[..., 0].mean(axis=(1, 2)) / 255.0
    return np.stack([1 - p, p], axis=1)


@pytest.mark.parametrize("encoded", [False, True])
def test_predict_dataset_keeps_order_and_resizes(encoded):
    y, probs, ids = data.predict_dataset(_mean_red, _dicts(encoded), image_size=8, batch_size=2)
    assert ids == IDS and list(y) == [0, 1, 0, 1, 0]
    resized = tf.image.resize(IMAGES.astype("float32"), (8, 8), method="bilinear").numpy()
    np.testing.assert_allclose(probs[:, 1], resized[..., 0].mean(axis=(1, 2)) / 255.0, rtol=1e-5)


def test_predict_dataset_label_key_limit_and_empty():
    y, _, ids = data.predict_dataset(
        _mean_red,
        _dicts(label_key="harmonised_diagnosis"),
        image_size=8,
        label_key="harmonised_diagnosis",
        limit=3,
    )
    assert ids == IDS[:3] and y.shape == (3,)
    with pytest.raises(ValueError, match="the test split is empty"):
        data.predict_dataset(_mean_red, _dicts().take(0), image_size=8)


def test_gather_images_in_requested_order():
    got = data.gather_images(_dicts(), ["ISIC_3", "ISIC_0"], image_size=12)
    np.testing.assert_allclose(
        got[0], tf.image.resize(IMAGES[3].astype("float32"), (12, 12)).numpy(), atol=1e-3
    )
    assert got.shape == (2, 12, 12, 3)


def test_parse_class_map():
    assert data.parse_class_map("benign=non_melanoma, malignant=melanoma") == {
        "benign": "non_melanoma",
        "malignant": "melanoma",
    }
    with pytest.raises(ValueError, match="expected folder=class_name"):
        data.parse_class_map("benign")


@pytest.mark.parametrize("encoded", [False, True])
def test_a_random_access_source_gives_the_tf_data_predictions(encoded):
    """The TF-free path (a sequence of dicts: NumPy decode and resize) predicts as tf.data does."""
    source = [
        {k: v.numpy() for k, v in ex.items()} for ex in _dicts(encoded, "label")
    ]  # a list is a Sequence, as `SplitView.as_data_source()` is
    want = data.predict_dataset(_mean_red, _dicts(encoded), image_size=8, batch_size=2, limit=4)
    got = data.predict_dataset(_mean_red, source, image_size=8, batch_size=2, limit=4)
    assert got[2] == want[2] == IDS[:4]
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], atol=1e-6)
