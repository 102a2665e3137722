"""The web model's recipe, `tfmelanoma/configs/webdemo.yaml`: the shipped run was made with it,
and its smoke-sized variant trains, fits the gate and exports to TF.js end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tfmelanoma import config as config_lib

REPO = Path(__file__).resolve().parents[2]
SHIPPED_RUN = REPO / "webdemo" / "models" / "meshnet-run"
# Where the shipped run's data was prepared: machine-specific, not part of the recipe.
PATHS = ("data.data_dir", "data.manual_dir", "run.out_dir", "run.name")


def test_webdemo_preset_is_the_recipe_of_the_shipped_model():
    cfg = config_lib.load_config("webdemo")
    assert cfg.model.name == "meshnet" and cfg.data.image_size == 128
    assert cfg.data.train == ("kaggle_fanconic",) and cfg.data.test == "kaggle_fanconic"
    assert cfg.run.seed == 0 and cfg.run.epochs == 20 and cfg.run.monitor == "val_loss"
    # The page feeds the whole image: no random crop or zoom in training.
    assert cfg.augment.crop_scale == 1.0 and cfg.augment.zoom == 0.0
    shipped = config_lib.load_config(str(SHIPPED_RUN / "config.yaml"))
    recipe, used = config_lib.flat(cfg), config_lib.flat(shipped)
    assert {k: v for k, v in used.items() if k not in PATHS} == {
        k: v for k, v in recipe.items() if k not in PATHS
    }


@pytest.mark.slow
def test_smoke_sized_webdemo_trains_fits_the_gate_and_exports(tmp_path):
    """~1 min on 2 cores: one epoch of two batches on the embedded sample, at the preset's 128 px."""
    from export import fit_gate, tfjs
    from tfmelanoma.training.runner import train

    cfg = config_lib.load_config(
        "webdemo",
        [
            "data.train=sample",
            "data.test=sample",
            f"data.data_dir={tmp_path / 'tfds'}",
            "run.epochs=1",
            "run.steps_per_epoch=2",
        ],
    )
    run = tmp_path / "run"
    result = train(cfg, run, verbose=0)
    assert (run / "best.keras").is_file() and (run / "evaluation" / "metrics.json").is_file()
    assert result.metrics["test"]["n_test"] > 0

    assert fit_gate.main(["--run", str(run)]) == 0
    gate = json.loads((run / "gate.json").read_text())
    assert gate["layer"] == "block9_relu" and gate["mahalanobis"]["threshold"] > 0

    out = tmp_path / "export"
    args = ["--model", str(run), "--out", str(out)]
    have_node = (REPO / "webdemo/node_modules/@tensorflow/tfjs-core").is_dir() and shutil.which(
        "node"
    )
    assert tfjs.main(args if have_node else [*args, "--skip-parity"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    report = json.loads((run / "evaluation" / "metrics.json").read_text())
    u = meta["uncertainty"]
    assert u["source"] == str(run / "evaluation" / "metrics.json")
    assert u["entropy_threshold"] == report["rejection"]["threshold"]
    assert u["temperature"] == report["calibration"]["params"]["temperature"]["temperature"]
    assert meta["metrics"]["auc_roc"] == report["summary"]["auc_roc"]
    assert meta["training"]["data"]["train"] == ["sample"]
    import keras

    trained = keras.saving.load_model(run / "best.keras", compile=False)
    n_bn = sum(isinstance(x, keras.layers.BatchNormalization) for x in trained.layers)
    assert meta["input"]["height"] == 128 and meta["batchnorm_folded"] == n_bn > 0
    assert meta["params"] < trained.count_params()  # the folded model was converted
    assert meta["gate"]["mahalanobis"]["threshold"] == gate["mahalanobis"]["threshold"]
    if have_node:
        assert meta["parity"]["passed"]


def test_fit_gate_needs_a_run_folder_and_changes_only_data_paths(tmp_path, capsys):
    from export import fit_gate

    assert fit_gate.main(["--run", str(tmp_path)]) == 2
    assert "expected a training run folder" in capsys.readouterr().err
    assert fit_gate.main(["--run", str(SHIPPED_RUN), "--set", "run.epochs=3"]) == 2
    assert "only data.data_dir and data.manual_dir may change" in capsys.readouterr().err
    assert not (tmp_path / "gate.json").exists()
