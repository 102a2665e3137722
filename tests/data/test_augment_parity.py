"""The NumPy pipeline (JAX, torch) augments like tf.data: every option of AugmentConfig, alone,
gives the same statistics of change over many seeds on a real dermoscopic image.

The two paths draw different random numbers, so pixels differ; what must agree is the effect of
each option: how far it moves pixels on average (mean |augmented - original|), and how much it
shifts the image's mean intensity. Before, the NumPy path ignored `zoom` and `hue` (change 0) and
rotated by multiples of 90 degrees only, and these comparisons failed.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfmelanoma.config import AugmentConfig
from tfmelanoma.data import augment as tf_augment
from tfmelanoma.data import image_ops, numpy_pipeline

SEEDS = 120
OFF = AugmentConfig(
    crop_scale=1.0, zoom=0.0, rotation=0.0, hflip=False, vflip=False,
    brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, cutout=0.0,
)  # fmt: skip
OPTIONS = {
    "crop_scale": 0.6,
    "zoom": 0.3,
    "rotation": 0.25,
    "hflip": True,
    "vflip": True,
    "brightness": 0.2,
    "contrast": 0.3,
    "saturation": 0.5,
    "hue": 0.1,
    "cutout": 0.3,
}


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    folder = resources.files("tfmelanoma").joinpath("data", "sample", "images")
    path = sorted(p for p in folder.iterdir() if p.name.endswith(".jpg"))[0]
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
    return image_ops.resize_antialiased_np(rgb, 64)


def _stats(original: np.ndarray, outputs: list[np.ndarray]) -> tuple[float, float]:
    stack = np.stack(outputs)
    change = np.abs(stack - original).mean()
    shift = np.abs(stack.mean(axis=(1, 2, 3)) - original.mean()).mean()
    return float(change), float(shift)


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_each_option_changes_the_image_alike_on_both_paths(image, option):
    config = dataclasses.replace(OFF, **{option: OPTIONS[option]})
    tf_out = [
        tf_augment.augment(tf.constant(image), tf.constant([7, seed]), config).numpy()
        for seed in range(SEEDS)
    ]
    rng = np.random.default_rng(7)
    np_out = [numpy_pipeline.augment(image.copy(), rng, config) for _ in range(SEEDS)]
    (tf_change, tf_shift), (np_change, np_shift) = _stats(image, tf_out), _stats(image, np_out)
    assert tf_change > 0.5, (option, tf_change)  # the option does something
    # Same effect within sampling error (120 draws): 25 % of the change, plus 0.5 levels.
    assert abs(np_change - tf_change) <= 0.25 * tf_change + 0.5, (option, tf_change, np_change)
    assert abs(np_shift - tf_shift) <= 0.25 * max(tf_shift, np_shift) + 0.5, (
        option,
        tf_shift,
        np_shift,
    )


def test_rotation_is_by_any_angle_not_quarter_turns(image):
    config = dataclasses.replace(OFF, rotation=0.25)
    rng = np.random.default_rng(0)
    quarter_turns = [np.rot90(image, k) for k in range(4)]
    for _ in range(10):
        out = numpy_pipeline.augment(image.copy(), rng, config)
        assert min(np.abs(out - q).mean() for q in quarter_turns) > 1.0


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_each_option_changes_the_image_alike_in_the_training_step(image, option):
    """The grain path's `DeviceAugment` (parameters drawn by `sample_params`, pixels computed in
    the step) against tf.data, by the same statistics. Its input is the stored uint8 image, so
    its changes are measured from that."""
    from tfmelanoma.data import device_augment

    config = dataclasses.replace(OFF, **{option: OPTIONS[option]})
    tf_out = [
        tf_augment.augment(tf.constant(image), tf.constant([7, seed]), config).numpy()
        for seed in range(SEEDS)
    ]
    stored = np.rint(image).astype(np.uint8)
    params = device_augment.sample_params(np.random.default_rng(7), SEEDS, config, 64)
    layer = device_augment.augment_layer(config, 64)
    out = np.asarray(layer(np.repeat(stored[None], SEEDS, 0), params, training=True))
    (tf_change, tf_shift) = _stats(image, tf_out)
    (dev_change, dev_shift) = _stats(stored.astype(np.float32), list(out))
    assert abs(dev_change - tf_change) <= 0.25 * tf_change + 0.5, (option, tf_change, dev_change)
    assert abs(dev_shift - tf_shift) <= 0.25 * max(tf_shift, dev_shift) + 0.5, (
        option,
        tf_shift,
        dev_shift,
    )
