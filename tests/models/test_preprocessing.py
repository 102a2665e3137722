"""In-model preprocessing equals keras.applications' `preprocess_input` (the reference)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfmelanoma.models.layers import ReverseChannels
from tfmelanoma.models.preprocessing import preprocess


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_matches_keras_applications(mode, tmp_path):
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, preprocess(inputs, mode))
    expected = keras.applications.imagenet_utils.preprocess_input(images.copy(), mode=mode)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-4)
    # The normalisation constants travel in the .keras file (safe_mode, no Lambda).
    model.save(tmp_path / "p.keras")
    loaded = keras.saving.load_model(tmp_path / "p.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-4)


def test_unit_and_none():
    images = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    inputs = keras.Input((1, 1, 3))
    np.testing.assert_allclose(
        keras.Model(inputs, preprocess(inputs, "unit"))(images), [[[[0, 0.5, 1]]]]
    )
    assert preprocess(inputs, "none") is inputs


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown preprocessing mode 'bgr'.*caffe"):
        preprocess(keras.Input((4, 4, 3)), "bgr")


def test_reverse_channels_config_roundtrip():
    layer = ReverseChannels(name="bgr")
    clone = ReverseChannels.from_config(layer.get_config())
    assert clone.name == "bgr"
    np.testing.assert_array_equal(clone(np.array([[1.0, 2.0, 3.0]])), [[3.0, 2.0, 1.0]])
