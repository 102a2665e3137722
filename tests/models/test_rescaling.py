"""Inverse-class-frequency rescaling: function, layer, and model wrapper agree."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfmelanoma.models import create_model
from tfmelanoma.models.layers import ClassFrequencyRescaling
from tfmelanoma.models.rescaling import (
    class_frequencies,
    rescale_probabilities,
    with_class_rescaling,
)


def test_hand_computed_softmax_case():
    # freqs 0.8 / 0.2: p = (0.6, 0.4) -> (0.75, 2.0) / 2.75
    out = rescale_probabilities([[0.6, 0.4]], [80, 20])
    np.testing.assert_allclose(out, [[0.75 / 2.75, 2.0 / 2.75]])


def test_sigmoid_equals_two_class_softmax():
    p = np.array([0.1, 0.5, 0.9])
    two = rescale_probabilities(np.stack([1 - p, p], axis=1), [0.9, 0.1])
    np.testing.assert_allclose(rescale_probabilities(p, [0.9, 0.1]), two[:, 1])
    np.testing.assert_allclose(rescale_probabilities(p[:, None], [9, 1])[:, 0], two[:, 1])


def test_uniform_frequencies_change_nothing():
    p = np.random.default_rng(0).dirichlet(np.ones(9), size=5)
    np.testing.assert_allclose(rescale_probabilities(p, np.ones(9)), p)


def test_class_frequencies():
    np.testing.assert_allclose(class_frequencies([0, 0, 0, 1], 2), [0.75, 0.25])
    with pytest.raises(ValueError, match=r"classes \[2\] never occur"):
        class_frequencies([0, 1, 1], 3)
    with pytest.raises(ValueError, match="must lie in"):
        class_frequencies([0, 3], 2)


@pytest.mark.parametrize("num_classes, freqs", [(3, [5, 3, 2]), (1, [0.7, 0.3])])
def test_layer_matches_function_and_saves(num_classes, freqs, tmp_path):
    model = create_model(
        "meshnet", num_classes=num_classes, input_shape=(32, 32, 3), width=8, dilations=(1, 2)
    )
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    rescaled = with_class_rescaling(model, freqs)
    expected = rescale_probabilities(model.predict(images, verbose=0), freqs)
    np.testing.assert_allclose(rescaled.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)
    rescaled.save(tmp_path / "r.keras")
    loaded = keras.saving.load_model(tmp_path / "r.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_layer_rejects_mismatch():
    with pytest.raises(ValueError, match="3 probabilities but 2 class_frequencies"):
        ClassFrequencyRescaling([1, 2])(np.ones((1, 3), "float32"))
    with pytest.raises(ValueError, match="positive"):
        ClassFrequencyRescaling([1, 0])
    with pytest.raises(ValueError, match="2 frequencies"):
        rescale_probabilities([0.5], [1, 1, 1])
