"""The grain pipeline's batches: a pure function of (seed, epoch, step), served by grain in order,
the same from a resumed start as in an uninterrupted run, in-process or from worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from tfmelanoma.config import AugmentConfig
from tfmelanoma.data import decoded_cache, device_augment, grain_pipeline, image_ops
from tfmelanoma.data.cached_batches import CachedBatches


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    rng = np.random.default_rng(0)
    source = [{"image": rng.integers(0, 256, (20, 20, 3)).astype(np.uint8)} for _ in range(10)]
    return decoded_cache.open_or_build(
        source, fingerprint="0" * 16, size=12, cache_dir=tmp_path_factory.mktemp("cache"),
        fields={"image": image_ops.resize_np}, progress=False,
    )  # fmt: skip


LABELS = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0])


def _maker(cache, **kw):
    kw = {"augment_config": AugmentConfig(), "seed": 3, **kw}
    return CachedBatches(cache, LABELS, batch_size=4, num_classes=2, image_size=10, **kw)


def _flat(batches):
    return [(b[0]["image"], b[0]["augment_params"], b[1]) for b in batches]


def test_resumed_stream_is_the_tail_of_the_uninterrupted_one(cache):
    maker = _maker(cache)
    assert maker.steps == 2  # 10 // 4, partial batch dropped
    whole = _flat(grain_pipeline.dataset(maker, epochs=3))
    resumed = _flat(grain_pipeline.dataset(_maker(cache), start_epoch=1, epochs=3))
    assert len(whole) == 6 and len(resumed) == 4
    for a, b in zip(whole[2:], resumed, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    # Epochs differ in order and in augmentation parameters.
    assert not np.array_equal(whole[0][1], whole[2][1])
    # The images are cache rows, unchanged (augmentation happens in the step).
    assert any((whole[0][0][0] == row).all() for row in cache.images)


def test_worker_processes_serve_the_same_batches(cache):
    maker = _maker(cache)
    here = _flat(grain_pipeline.dataset(maker, epochs=2))
    there = _flat(grain_pipeline.dataset(maker, epochs=2, workers=2))
    for a, b in zip(here, there, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_oversampling_class_weights_and_padding(cache):
    rows = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 4, 8, 1])
    maker = _maker(cache, rows=rows, class_weight={0: 0.5, 1: 2.0})
    assert maker.steps == 3
    x, y, w = maker(0)
    np.testing.assert_array_equal(w, np.where(y[:, 1] == 1, 2.0, 0.5))
    seen = np.concatenate([maker(g)[1][:, 1] for g in range(3)])
    assert seen.sum() > LABELS[:12].sum()  # the repeated melanoma rows are drawn
    val = CachedBatches(
        cache, LABELS, batch_size=4, num_classes=2, image_size=10, pad_to_multiple=3
    )
    batches = [val(g) for g in range(val.steps)]
    assert [len(b[1]) for b in batches] == [6, 6, 3]  # 4 -> 6, 4 -> 6, 2 -> 3
    assert [b[2].sum() for b in batches] == [4, 4, 2]  # padding weighs nothing
    np.testing.assert_array_equal(batches[0][0]["augment_params"][:4],
                                  device_augment.identity_params(4))  # fmt: skip
