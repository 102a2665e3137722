"""Segmentation on the decoded-cache pipelines (grain, tf_cached): image + mask warped alike in
the step (`device_augment.AugmentedSegmenter`). Their resume and best.keras checks are
`test_engine.test_resumed_run_equals_an_uninterrupted_one`."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfmelanoma.data import device_augment

pytestmark = pytest.mark.slow


def test_mask_is_warped_with_the_image_in_the_loss():
    seg = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(1, 1, activation="sigmoid")]
    )
    wrapper = device_augment.AugmentedSegmenter(seg, 8)
    wrapper.compile(loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    masks = (rng.random((4, 8, 8, 1)) > 0.5).astype(np.uint8)
    params = device_augment.sample_pair_params(rng, 4)
    x = {device_augment.IMAGE_KEY: images, device_augment.PARAMS_KEY: params}
    got = wrapper.evaluate(x, masks, verbose=0, batch_size=4)
    pred = seg(device_augment.warp(images, params, 8))
    warped = device_augment.warp(masks, params, 8, nearest=True)
    assert set(np.unique(np.asarray(warped))) <= {0.0, 1.0}
    want = float(keras.ops.mean(keras.losses.binary_crossentropy(warped, pred)))
    assert got == pytest.approx(want, rel=1e-5)
