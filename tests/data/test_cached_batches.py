"""Decoded-cache batches served by tf.data (`tf_cached`) and by grain: the same batches, the same
augmented pixels on TensorFlow and JAX for a seed, and per-process rows for multi-host runs.

Stated tolerance: tf.data and grain serve identical uint8 images and identical parameters (exact);
`DeviceAugment` on TensorFlow and on JAX turns them into pixels within 1e-3 of 255 per pixel
(float32 rounding in bilinear weights and the HSV conversion).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from tfmelanoma.config import AugmentConfig
from tfmelanoma.data import decoded_cache, device_augment, grain_pipeline, image_ops
from tfmelanoma.data import pipeline as tf_pipeline
from tfmelanoma.data.cached_batches import CachedBatches, CachedPairs

EVERYTHING = AugmentConfig(zoom=0.2, cutout=0.25)  # every option on
LABELS = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    rng = np.random.default_rng(0)
    smooth = rng.integers(0, 256, (12, 6, 6, 3)).astype(np.float32)  # real-looking, not noise
    source = [
        {"image": np.rint(image_ops.resize_np(s, 24)).astype(np.uint8), "mask": m}
        for s, m in zip(smooth, rng.integers(0, 2, (12, 24, 24)).astype(np.uint8), strict=True)
    ]
    return decoded_cache.open_or_build(
        source, fingerprint="1" * 16, size=20, cache_dir=tmp_path_factory.mktemp("cache"),
        fields={"image": image_ops.resize_np, "mask": image_ops.resize_mask_np}, progress=False,
    )  # fmt: skip


def _maker(cache, **kw):
    kw = {"augment_config": EVERYTHING, "seed": 3, "batch_size": 4, **kw}
    return CachedBatches(cache, LABELS, num_classes=2, image_size=16, **kw)


def _flat(batches) -> list[list[np.ndarray]]:
    import tensorflow as tf

    return [[np.asarray(a) for a in tf.nest.flatten(b)] for b in batches]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            assert u.dtype == v.dtype
            np.testing.assert_array_equal(u, v)


def test_tf_data_serves_the_grain_batches(cache):
    # Training with class weights, resumed at epoch 1 of 3.
    train = _maker(cache, class_weight={0: 0.5, 1: 2.0})
    there = _flat(grain_pipeline.dataset(train, start_epoch=1, epochs=3))
    here = _flat(tf_pipeline.cached_dataset(train, start_epoch=1, epochs=3).as_numpy_iterator())
    assert len(here) == 2 * train.steps == 6
    _assert_same(here, there)
    # Evaluation: cache order, padded last batch (12 = 4 + 4 + 4 -> with batch 5: 5, 5, 2 -> 3).
    val = CachedBatches(cache, LABELS, batch_size=5, num_classes=2, image_size=16,
                        pad_to_multiple=3)  # fmt: skip
    here = _flat(tf_pipeline.cached_dataset(val).as_numpy_iterator())
    _assert_same(here, _flat(grain_pipeline.dataset(val)))
    assert [len(b[-1]) for b in here] == [6, 6, 3]
    # Segmentation pairs.
    pairs = CachedPairs(cache, augment=True, training=True, batch_size=4, image_size=16, seed=1)
    _assert_same(
        _flat(tf_pipeline.cached_dataset(pairs, epochs=2).as_numpy_iterator()),
        _flat(grain_pipeline.dataset(pairs, epochs=2)),
    )


def test_processes_together_serve_the_one_process_batches(cache):
    one = _maker(cache, class_weight={0: 0.5, 1: 2.0})
    halves = [_maker(cache, class_weight={0: 0.5, 1: 2.0}, process=(i, 2)) for i in range(2)]
    for g in range(5):  # across an epoch boundary
        whole = _flat([one(g)])[0]
        parts = [_flat([h(g)])[0] for h in halves]
        assert len(parts[0][0]) == 2  # this process's rows only
        for k, array in enumerate(whole):
            np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), array)
    # Evaluation: the last batch (2 rows) padded to the replicas (4), then halved: process 1
    # gets only zero-weight padding.
    val = [CachedBatches(cache, LABELS, rows=np.arange(10), batch_size=4, num_classes=2,
                         image_size=16, pad_to_multiple=4, process=(i, 2))
           for i in range(2)]  # fmt: skip
    assert [len(val[0](g)[1]) for g in range(3)] == [2, 2, 2]
    assert val[0](2)[2].tolist() == [1, 1] and val[1](2)[2].tolist() == [0, 0]
    with pytest.raises(ValueError, match="batch of 5 does not split evenly between 2 processes"):
        _maker(cache, batch_size=5, process=(0, 2))


_JAX_SIDE = """
import pickle, sys, numpy as np
import keras
from tfmelanoma.config import AugmentConfig
from tfmelanoma.data import device_augment, grain_pipeline
assert keras.backend.backend() == "jax"
maker = pickle.load(open(sys.argv[1], "rb"))
layer = device_augment.augment_layer(AugmentConfig(zoom=0.2, cutout=0.25), 16)
out = [np.asarray(layer(x["image"], x["augment_params"], training=True))
       for x, *_ in grain_pipeline.dataset(maker, start_epoch=1, epochs=2)]
np.save(sys.argv[2], np.stack(out))
"""


@pytest.mark.slow
def test_same_seed_same_augmented_pixels_on_tensorflow_and_jax(cache, tmp_path):
    import keras

    assert keras.backend.backend() == "tensorflow"
    maker = _maker(cache)
    layer = device_augment.augment_layer(EVERYTHING, 16)
    ds = tf_pipeline.cached_dataset(maker, start_epoch=1, epochs=2)
    here = np.stack([np.asarray(layer(x["image"], x["augment_params"], training=True))
                     for x, _ in ds])  # fmt: skip
    (tmp_path / "maker.pkl").write_bytes(pickle.dumps(maker))
    out = tmp_path / "jax.npy"
    run = subprocess.run(
        [sys.executable, "-c", _JAX_SIDE, str(tmp_path / "maker.pkl"), str(out)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    there = np.load(out)
    assert here.shape == there.shape == (maker.steps, 4, 16, 16, 3)
    np.testing.assert_allclose(there, here, atol=1e-3)
    unaugmented = np.stack([image_ops.resize_np(i, 16) for i in cache.images])
    assert min(np.abs(here[0, 0] - u).mean() for u in unaugmented) > 3  # it does augment
