"""Segmentation on the grain pipeline: image + mask decoded once, warped alike in the step
(`device_augment.AugmentedSegmenter`), resume = uninterrupted, best.keras = the model alone."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

from tests.segmentation.test_engine import _config, folder  # noqa: F401  (fixture)
from tfmelanoma.data import device_augment
from tfmelanoma.training import checkpoints, runner

pytestmark = pytest.mark.slow


def _history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_resumed_grain_run_equals_an_uninterrupted_one(folder, tmp_path, monkeypatch):  # noqa: F811
    cfg = _config(folder, "grain")
    cfg = type(cfg)(**{**cfg.__dict__, "data": type(cfg.data)(
        **{**cfg.data.__dict__, "cache_dir": str(tmp_path / "decoded")})})  # fmt: skip
    whole = runner.train(cfg, tmp_path / "whole", verbose=0)
    assert whole.metrics["pipeline"] == "grain"
    best = keras.models.load_model(tmp_path / "whole" / "best.keras")
    assert not isinstance(best, device_augment.AugmentedSegmenter)
    assert best.input_shape == (None, 16, 16, 3)
    assert len(list((tmp_path / "decoded").iterdir())) == 2  # train and validation, 16 px

    original = checkpoints.ResumableCheckpoint.on_epoch_end

    def stop_after_first(self, epoch, logs=None):
        original(self, epoch, logs)  # epoch committed (state.json), then the process "dies"
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.ResumableCheckpoint, "on_epoch_end", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        runner.train(cfg, tmp_path / "cut", verbose=0)
    assert checkpoints.load_state(tmp_path / "cut" / "checkpoints").epochs_done == 1
    monkeypatch.setattr(checkpoints.ResumableCheckpoint, "on_epoch_end", original)
    resumed = runner.train(cfg, tmp_path / "cut", resume=True, verbose=0)

    a, b = _history(tmp_path / "whole"), _history(tmp_path / "cut")
    assert [r["epoch"] for r in b] == ["1", "2", "3"]
    for key in ("loss", "dice", "val_loss", "val_dice"):
        np.testing.assert_allclose(
            [float(r[key]) for r in b], [float(r[key]) for r in a], rtol=1e-4, atol=1e-5
        )
    assert resumed.metrics["best_epoch"] == whole.metrics["best_epoch"]
    assert resumed.metrics["test"]["dice"] == pytest.approx(whole.metrics["test"]["dice"], abs=1e-5)


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
