"""`python -m tfmelanoma.segment`: bad input, and (slow, real data) train -> evaluate -> predict."""

import csv
import json
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfmelanoma import segment


def test_train_needs_data_dir(tmp_path, capsys):
    assert segment.main(["train", "--preset", "smoke", "--out", str(tmp_path / "run")]) == 2
    assert (
        "python -m tfmelanoma.segment: error: --data isic2017 needs --data-dir"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_train_never_overwrites_a_model(tmp_path, capsys):
    (tmp_path / "model.keras").write_bytes(b"precious")
    argv = ["train", "--preset", "smoke", "--data-dir", str(tmp_path), "--out", str(tmp_path)]
    assert segment.main(argv) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "model.keras").read_bytes() == b"precious"


def test_ctrl_c_python_dropped_during_training_keeps_the_old_model(tmp_path, monkeypatch, capsys):
    """A SIGINT whose KeyboardInterrupt Python dropped while the replacement trained (seen once
    in CI: `segment train --overwrite` interrupted, exit 0, the old model replaced) still stops
    the command at its commit point: exit 130 and `model.keras` untouched."""
    import types

    from tfmelanoma import cli
    from tfmelanoma.training import runner

    out = tmp_path / "run"
    out.mkdir()
    (out / "model.keras").write_bytes(b"the old model")

    def train(cfg, run_dir, **kwargs):
        (run_dir / "best.keras").write_bytes(b"the new model")
        cli._ctrl_c_seen = True  # what the SIGINT handler records before its exception is lost
        return types.SimpleNamespace(metrics={"model": "unet", "params": 1, "best_epoch": 1})

    monkeypatch.setattr(runner, "train", train)
    args = types.SimpleNamespace(resume=False, overwrite=True)
    assert (
        cli.run_command("segment", lambda: segment.train_one(None, out, args), on_interrupt="x")
        == 130
    )
    assert (out / "model.keras").read_bytes() == b"the old model"
    assert not (out / "summary.json").exists()
    assert capsys.readouterr().err.strip().endswith("segment: interrupted; x")


def test_predict_names_a_missing_folder(tmp_path, capsys):
    import keras

    from tfmelanoma.models import create_model

    model_path = tmp_path / "m.keras"
    create_model("unet", input_shape=(16, 16, 3), base_filters=2, depth=2).save(model_path)
    argv = ["predict", "--model", str(model_path), "--images", str(tmp_path / "nope")]
    assert segment.main([*argv, "--out", str(tmp_path / "masks")]) == 2
    assert re.search(r"image folder not found: .*nope", capsys.readouterr().err)
    assert keras.models.load_model(model_path, safe_mode=True) is not None


@pytest.mark.slow
def test_short_training_on_isic2017_beats_a_constant_mask(shared_data, tmp_path):
    root = shared_data / "isic2017"
    run = tmp_path / "run"
    n = 48
    rc = segment.main(
        [
            "train",
            "--model",
            "unet",
            "--base-filters",
            "8",
            "--depth",
            "3",
            "--image-size",
            "64",
            "--batch-size",
            "8",
            "--limit",
            str(n),
            "--epochs",
            "5",
            "--lr",
            "3e-3",
            "--bn-momentum",
            "0.8",
            "--loss",
            "dice_bce",
            "--no-augment",
            "--val-limit",
            "16",
            "--data",
            "isic2017",
            "--data-dir",
            str(root),
            "--tfds-data-dir",
            str(tmp_path / "tfds"),
            "--out",
            str(run),
        ]
    )
    assert rc == 0
    for name in ("model.keras", "best.keras", "history.csv", "history.png", "config.yaml",
                 "summary.json", "metrics.json", "evaluation/per_image.csv"):  # fmt: skip
        assert (run / name).is_file()
    assert len((run / "history.csv").read_text().splitlines()) == 6  # header + 5 epochs

    rc = segment.main(
        [
            "evaluate",
            "--model",
            str(run / "model.keras"),
            "--data",
            "isic2017",
            "--data-dir",
            str(root),
            "--tfds-data-dir",
            str(tmp_path / "tfds"),
            "--split",
            "train",
            "--limit",
            str(n),
            "--out",
            str(run / "eval"),
        ]
    )
    assert rc == 0
    scores = json.loads((run / "eval" / "metrics.json").read_text())
    assert (run / "eval" / "grid.png").stat().st_size > 10_000
    assert len((run / "eval" / "per_image.csv").read_text().splitlines()) == n + 1
    # The best constant mask is "all lesion" (all background scores 0): its Dice on an image
    # whose lesion covers a fraction f is 2f / (1 + f).
    with open(run / "eval" / "per_image.csv") as f:
        truth = np.array([float(r["truth_fraction"]) for r in csv.DictReader(f)])
    constant = (2 * truth / (1 + truth)).mean()
    assert scores["dice"] > constant + 0.05, (scores, constant)

    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((root / "ISIC-2017_Validation_Data").glob("ISIC_*.jpg"))[:2]:
        shutil.copy(path, images)
    rc = segment.main(
        [
            "predict",
            "--model",
            str(run / "model.keras"),
            "--images",
            str(images),
            "--out",
            str(tmp_path / "masks"),
            "--crop-dir",
            str(tmp_path / "crops"),
        ]
    )
    assert rc == 0
    for path in images.iterdir():
        original = tf.io.decode_image(tf.io.read_file(str(path))).shape
        mask = tf.io.decode_png(
            tf.io.read_file(str(tmp_path / "masks" / f"{path.stem}_segmentation.png"))
        )
        assert mask.shape[:2] == original[:2] and set(np.unique(mask.numpy())) <= {0, 255}
        crop = tf.io.decode_png(tf.io.read_file(str(tmp_path / "crops" / f"{path.stem}.png")))
        assert crop.shape[0] <= original[0] and crop.shape[1] <= original[1]
