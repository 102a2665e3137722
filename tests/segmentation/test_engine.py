"""Segmentation through the one training engine: resume = uninterrupted, best.keras = best val
Dice, and (slow, real data) the isic2017 builder's masks and images against the official files."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest
from PIL import Image

from tfmelanoma.config import load_config
from tfmelanoma.data import device_augment
from tfmelanoma.training import checkpoints, runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Twelve 24x24 images whose lesion (a bright square) is where the mask says."""
    root = tmp_path_factory.mktemp("segfolder")
    rng = np.random.default_rng(0)
    for d in ("images", "masks"):
        (root / d).mkdir()
    for i in range(12):
        top, left = rng.integers(2, 10, 2)
        mask = np.zeros((24, 24), np.uint8)
        mask[top : top + 10, left : left + 10] = 255
        image = rng.integers(0, 90, (24, 24, 3), dtype=np.uint8)
        image[mask > 0] += 120
        Image.fromarray(image).save(root / "images" / f"c{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"c{i:02d}.png")
    return root


def _config(folder, pipeline: str, *extra: str, epochs: int = 3):
    return load_config(
        "segmentation_smoke",
        [
            "data.train=folder", f"data.images_dir={folder / 'images'}",
            f"data.masks_dir={folder / 'masks'}", "data.image_size=16", "data.limit=0",
            "data.val_limit=0", f"data.pipeline={pipeline}", "data.workers=1",
            "model.options={base_filters: 4, depth: 2, bn_momentum: 0.9}", "run.steps_per_epoch=0",
            f"run.epochs={epochs}", "run.batch_size=2", "optimizer.learning_rate=0.01", *extra,
        ],
    )  # fmt: skip


def _history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("pipeline", ["tf", "numpy", "grain", "tf_cached"])
def test_resumed_run_equals_an_uninterrupted_one(folder, tmp_path, monkeypatch, pipeline):
    cfg = _config(folder, pipeline, f"data.cache_dir={tmp_path / 'decoded'}")
    whole = runner.train(cfg, tmp_path / "whole", verbose=0)
    assert whole.metrics["pipeline"] == pipeline
    if pipeline in ("grain", "tf_cached"):  # image + mask decoded once, warped in the step
        best = keras.models.load_model(tmp_path / "whole" / "best.keras")
        assert not isinstance(best, device_augment.AugmentedSegmenter)
        assert best.input_shape == (None, 16, 16, 3)
        assert len(list((tmp_path / "decoded").iterdir())) == 2  # train and validation, 16 px

    original = checkpoints.ResumableCheckpoint.on_epoch_end

    def stop_after_first(self, epoch, logs=None):
        original(self, epoch, logs)  # the last callback: the epoch is logged and committed
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


def test_best_keras_is_the_best_val_dice_epoch_not_the_last(folder, tmp_path, monkeypatch):
    # A real run: best_epoch is the argmax of val_dice, and best.keras reproduces that score.
    run = runner.train(_config(folder, "tf"), tmp_path / "run", verbose=0)
    val_dice = [float(r["val_dice"]) for r in _history(tmp_path / "run")]
    assert run.metrics["best_epoch"] == int(np.argmax(val_dice)) + 1
    assert run.metrics["best_val_dice"] == pytest.approx(max(val_dice))
    evaluation = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    assert evaluation["dice"] == pytest.approx(max(val_dice), abs=1e-5)  # validation = test here

    # Validation Dice 0.2, 0.9, 0.1: best.keras must hold epoch 2's weights, not epoch 3's.
    original = checkpoints.ResumableCheckpoint.on_epoch_end
    weights = []

    def scripted(self, epoch, logs=None):
        logs = dict(logs or {}, val_dice=(0.2, 0.9, 0.1)[epoch])
        weights.append([w.copy() for w in self.model.get_weights()])
        original(self, epoch, logs)

    monkeypatch.setattr(checkpoints.ResumableCheckpoint, "on_epoch_end", scripted)
    result = runner.train(_config(folder, "tf"), tmp_path / "scripted", verbose=0)
    assert result.metrics["best_epoch"] == 2 and result.metrics["best_val_dice"] == 0.9
    best = keras.models.load_model(tmp_path / "scripted" / "best.keras").get_weights()
    for got, epoch2 in zip(best, weights[1], strict=True):
        np.testing.assert_array_equal(got, epoch2)
    assert any(not np.array_equal(a, b) for a, b in zip(weights[1], weights[2], strict=True))


def test_isic2017_builder_matches_the_official_files(shared_data, tmp_path):
    """The builder's segmentation config: official counts, masks equal to the PNG files, images
    equal to the JPEGs up to the builder's re-encoding."""
    from tfmelanoma.data import segmentation_sources as sources
    from tfmelanoma.data.images import open_rgb
    from tfmelanoma.data.masks import read_mask

    root = shared_data / "isic2017"
    cfg = load_config(
        "segmentation_smoke",
        [f"data.manual_dir={root}", f"data.data_dir={tmp_path / 'tfds'}", "data.limit=0",
         "data.val_limit=0", "data.pipeline=numpy"],
    )  # fmt: skip
    data = sources.load_segmentation_data(cfg, file_format="array_record")
    assert (len(data.train), len(data.validation)) == (2000, 150)
    assert data.test is data.validation  # no test split in the shared copy
    source = data.validation.as_data_source()
    for index in (0, 1, 75, 149):
        example = source[index]
        image_id = example["image_id"]
        image_id = image_id.decode() if isinstance(image_id, bytes) else image_id
        mask_file = root / "ISIC-2017_Validation_Part1_GroundTruth" / f"{image_id}_segmentation.png"
        np.testing.assert_array_equal(
            example["segmentation_mask"][..., 0], read_mask(mask_file) * np.uint8(255)
        )
        original = np.asarray(open_rgb(root / "ISIC-2017_Validation_Data" / f"{image_id}.jpg"))
        assert example["image"].shape == original.shape
        diff = np.abs(example["image"].astype(np.int16) - original)
        assert diff.mean() < 2.0, (image_id, diff.mean())  # stored re-encoded as JPEG
