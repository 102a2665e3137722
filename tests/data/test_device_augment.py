"""`DeviceAugment`: the grain path's augmentation inside the training step.

The same parameters give the same pixels on every Keras backend (only `keras.ops` arithmetic and
`take`): TensorFlow here, JAX and torch in subprocesses, within 1e-3 of 255 per pixel (measured
2.4e-4 on JAX, 2.0e-4 on torch: float32 rounding in bilinear weights and HSV conversions). Identity parameters resize
as the pixel contract's `resize_np`; a batch's parameters are a pure function of their seed.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from tfmelanoma.config import AugmentConfig
from tfmelanoma.data import device_augment, image_ops

EVERYTHING = AugmentConfig(zoom=0.2, cutout=0.25)  # every option on


def _batch(n=6, size=48) -> np.ndarray:
    rng = np.random.default_rng(3)
    smooth = rng.integers(0, 256, (n, size // 8, size // 8, 3)).astype(np.float32)
    return np.stack([np.rint(image_ops.resize_np(i, size)) for i in smooth]).astype(np.uint8)


def test_identity_parameters_resize_as_the_pixel_contract():
    images = _batch()
    layer = device_augment.DeviceAugment(40)
    out = np.asarray(layer(images, device_augment.identity_params(len(images)), training=True))
    expected = np.stack([image_ops.resize_np(i, 40) for i in images])
    np.testing.assert_allclose(out, expected, atol=1e-3)
    same = device_augment.DeviceAugment(48)
    out = np.asarray(same(images, device_augment.identity_params(len(images)), training=True))
    np.testing.assert_allclose(out, images, atol=3e-3)
    # Inference: only the resize (validation is stored at the model's size: untouched).
    params = device_augment.sample_params(np.random.default_rng(0), 6, EVERYTHING, 40)
    np.testing.assert_allclose(
        np.asarray(layer(images, params, training=False)), expected, atol=1e-3
    )
    np.testing.assert_array_equal(np.asarray(same(images, params, training=False)), images)


def test_parameters_are_a_pure_function_of_the_seed_and_stay_in_range():
    a = device_augment.sample_params(np.random.default_rng([1, 2, 3]), 64, EVERYTHING, 32)
    b = device_augment.sample_params(np.random.default_rng([1, 2, 3]), 64, EVERYTHING, 32)
    np.testing.assert_array_equal(a, b)
    y0, x0, h, w = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    assert (y0 >= 0).all() and (x0 >= 0).all() and (y0 + h <= 1 + 1e-6).all()
    assert (x0 + w <= 1 + 1e-6).all() and (h * w >= 0.8 * 0.8**2 - 1e-6).all()
    off = dataclasses.replace(EVERYTHING, enabled=False)
    np.testing.assert_array_equal(
        device_augment.sample_params(np.random.default_rng(0), 4, off, 32),
        device_augment.identity_params(4),
    )


_OTHER_BACKEND = """
import sys, numpy as np
from tfmelanoma.data import device_augment
from tfmelanoma.config import AugmentConfig
images, params = np.load(sys.argv[1]), np.load(sys.argv[2])
layer = device_augment.augment_layer(AugmentConfig(zoom=0.2, cutout=0.25), 40)
np.save(sys.argv[3], np.asarray(layer(images, params, training=True)))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_same_parameters_same_pixels_on_every_backend(backend, tmp_path):
    import keras

    images = _batch()
    params = device_augment.sample_params(np.random.default_rng(5), len(images), EVERYTHING, 40)
    here = np.asarray(device_augment.augment_layer(EVERYTHING, 40)(images, params, training=True))
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "params.npy", params)
    out = tmp_path / f"{backend}.npy"
    paths = [str(tmp_path / "images.npy"), str(tmp_path / "params.npy"), str(out)]
    env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
    run = subprocess.run(
        [sys.executable, "-c", _OTHER_BACKEND, *paths], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert keras.backend.backend() != backend
    np.testing.assert_allclose(np.load(out), here, atol=1e-3)
    resized = np.stack([image_ops.resize_np(i, 40) for i in images])
    assert np.abs(here - resized).mean() > 5  # it does augment


def test_wrapper_trains_the_model_and_gives_it_back(tmp_path):
    import keras

    model = keras.Sequential(
        [keras.Input((40, 40, 3)), keras.layers.GlobalAveragePooling2D(),
         keras.layers.Dense(2, activation="softmax")]
    )  # fmt: skip
    wrapper = device_augment.training_model(model, EVERYTHING, 40)
    wrapper.compile("adam", "categorical_crossentropy")
    images = _batch()
    params = device_augment.sample_params(np.random.default_rng(0), 6, EVERYTHING, 40)
    x = {device_augment.IMAGE_KEY: images, device_augment.PARAMS_KEY: params}
    wrapper.fit(x, np.eye(2)[[0, 1] * 3], epochs=1, verbose=0)
    assert device_augment.inner_model(wrapper) is model
    wrapper.save(tmp_path / "wrapper.keras")
    loaded = keras.models.load_model(tmp_path / "wrapper.keras")
    inner = device_augment.inner_model(loaded)
    assert inner is not loaded and inner.input_shape == (None, 40, 40, 3)
    for a, b in zip(inner.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
