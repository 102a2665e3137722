"""MeshNet specifics: schedule options, size budget, BatchNorm folding for export."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfmelanoma.models import create_model, fold_batchnorm
from tfmelanoma.models.meshnet import meshnet


def _randomise_batchnorm(model: keras.Model, seed: int = 0) -> None:
    """Non-trivial moving statistics, as after training (fresh BN is the identity)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, c),
                    rng.normal(0, 1, c),
                    rng.normal(0, 0.2, c),
                    rng.uniform(0.5, 2, c),
                ]
            )


def test_default_is_under_the_web_budget():
    model = create_model("meshnet")
    folded = fold_batchnorm(model)
    # < 1 MB of float32 weights after export (the paper's web model: ~1 M params, 3.8 MB).
    assert folded.count_params() * 4 < 1_000_000
    dilations = [
        layer.dilation_rate[0]
        for layer in model.layers
        if layer.name.startswith("block") and layer.name.endswith("_conv")
    ]
    assert dilations == [1, 2, 4, 8, 16, 8, 4, 2, 1]
    kinds = {type(layer).__name__ for layer in model.layers}
    assert kinds <= {
        "InputLayer", "Rescaling", "Conv2D", "BatchNormalization", "ReLU", "Dropout",
        "GlobalAveragePooling2D", "Dense", "Activation",
    }  # fmt: skip


def test_schedule_and_width_are_config():
    model = meshnet(input_shape=(48, 48, 3), width=[8, 12, 16], dilations=[1, 3, 1], stem_convs=1)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [8, 8, 12, 16]
    assert [c.dilation_rate[0] for c in convs] == [1, 1, 3, 1]
    assert model.get_layer("block3_relu").output.shape == (None, 24, 24, 16)


def test_variable_input_size():
    model = meshnet(input_shape=(None, None, 3), width=8, dilations=(1, 2, 1))
    for size in (40, 64):
        assert model(np.zeros((1, size, size, 3), "float32")).shape == (1, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dilations": []}, "dilations"),
        ({"dilations": [1, 0]}, "dilations"),
        ({"width": [8, 8], "dilations": [1, 2, 1]}, "width"),
        ({"num_classes": 0}, "num_classes"),
        ({"input_shape": (32, 32, 1)}, "input_shape"),
        ({"stem_convs": -1}, "stem_convs"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        meshnet(**kwargs)


def test_fold_batchnorm_keeps_outputs():
    model = meshnet(input_shape=(64, 64, 3), width=12, dilations=(1, 2, 4, 2, 1))
    _randomise_batchnorm(model)
    images = np.random.default_rng(1).uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    folded = fold_batchnorm(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    assert all(c.use_bias for c in folded.layers if isinstance(c, keras.layers.Conv2D))
    np.testing.assert_allclose(
        folded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5
    )
    # The original is left untouched (still has its BatchNorm layers and weights).
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    # Folded = what meshnet(batch_norm=False) builds, so the export can also rebuild it from config.
    plain = meshnet(input_shape=(64, 64, 3), width=12, dilations=(1, 2, 4, 2, 1), batch_norm=False)
    assert plain.count_params() == folded.count_params()


def test_fold_batchnorm_rejects_non_functional():
    with pytest.raises(ValueError, match="functional"):
        fold_batchnorm(keras.layers.Dense(2))


@pytest.mark.slow
def test_meshnet_learns_a_separable_toy_task():
    """Dark central blob (class 1) vs plain skin tone (class 0): training must fit it."""
    rng = np.random.default_rng(0)
    n, size = 64, 32
    images = rng.normal(180, 20, (n, size, size, 3)).clip(0, 255).astype("float32")
    labels = np.arange(n) % 2
    yy, xx = np.mgrid[0:size, 0:size]
    for i in np.flatnonzero(labels):
        cy, cx, r = rng.integers(10, 22), rng.integers(10, 22), rng.integers(4, 8)
        images[i][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(30, 80)
    keras.utils.set_random_seed(0)
    model = meshnet(input_shape=(size, size, 3), width=12, dilations=(1, 2, 4, 2, 1), stem_convs=1)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # 240 steps: enough for the BatchNorm moving statistics (momentum 0.99) to settle.
    model.fit(images, labels, epochs=60, batch_size=16, verbose=0)
    probs = fold_batchnorm(model).predict(images, verbose=0)
    assert np.mean(probs.argmax(1) == labels) >= 0.95


def test_weights_file_and_clear_errors(tmp_path):
    model = meshnet(input_shape=(32, 32, 3), width=8, dilations=(1, 2))
    _randomise_batchnorm(model)
    model.save_weights(tmp_path / "m.weights.h5")
    again = create_model(
        "meshnet",
        input_shape=(32, 32, 3),
        width=8,
        dilations=(1, 2),
        weights=tmp_path / "m.weights.h5",
    )
    images = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(again(images, training=False), model(images, training=False))
    with pytest.raises(ValueError, match="no ImageNet weights"):
        create_model("tinyvgg", weights="imagenet")
    with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
        create_model("meshnet", weights=tmp_path / "nope.weights.h5")
