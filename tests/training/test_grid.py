"""The experiment grid: one row per cell, crash isolation, skipping finished cells on rerun."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from tfmelanoma import grid


def test_parse_explicit_specs():
    assert grid.parse_datasets("isic2016+isic2017:isic2017,sample:sample") == [
        ("isic2016+isic2017__isic2017", ("isic2016", "isic2017"), "isic2017"),
        ("sample__sample", ("sample",), "sample"),
    ]
    with pytest.raises(ValueError, match="is not TRAIN"):
        grid.parse_datasets("isic2016:")
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        grid.parse_datasets("nope")


def test_paper_preset_expands_to_cells():
    combos = grid.parse_datasets("uncertainty_paper")
    assert len(combos) >= 48 and all(test for _, _, test in combos)


def test_append_row_replaces_the_cell_atomically(tmp_path):
    path = tmp_path / "results.csv"
    grid.append_row(path, {"cell_id": "a", "status": "failed"})
    grid.append_row(path, {"cell_id": "b", "status": "ok"})
    table = grid.append_row(path, {"cell_id": "a", "status": "ok"})
    assert sorted(table["cell_id"]) == ["a", "b"] and set(table["status"]) == {"ok"}
    assert not (tmp_path / "results.csv.tmp").exists()


@pytest.mark.slow
def test_grid_runs_cells_isolates_failures_and_skips_done_ones(tmp_path):
    env = dict(os.environ, TFDS_DATA_DIR=str(tmp_path / "tfds"), TF_CPP_MIN_LOG_LEVEL="2")
    args = [
        sys.executable, "-m", "tfmelanoma.grid", "--datasets", "sample:sample,isic2016:isic2016",
        "--models", "meshnet", "--config", "smoke", "--set", "run.epochs=1", "--out", str(tmp_path / "g"),
    ]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
    assert first.returncode == 1, first.stderr[-2000:]  # one cell failed
    table = pd.read_csv(tmp_path / "g" / "results.csv")
    rows = table.set_index("cell_id")
    assert rows.loc["sample__sample__meshnet", "status"] == "ok"
    assert 0 <= rows.loc["sample__sample__meshnet", "precision"] <= 1
    assert rows.loc["isic2016__isic2016__meshnet", "status"] == "failed"
    assert "isic2016" in rows.loc["isic2016__isic2016__meshnet", "error"]
    summary = (tmp_path / "g" / "summary.md").read_text()
    assert "## Test: sample" in summary and "## Failed cells" in summary

    second = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
    assert "2 cells, 1 already done, 1 to run" in second.stdout
    assert len(pd.read_csv(tmp_path / "g" / "results.csv")) == 2


def test_unknown_model_is_a_one_line_error():
    out = subprocess.run(
        [sys.executable, "-m", "tfmelanoma.grid", "--datasets", "sample:sample", "--models", "resnet5O"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2 and "unknown ['resnet5O']" in out.stderr


def test_summary_numbers_are_rounded_and_labelled(tmp_path):
    row = {
        "cell_id": "a", "status": "ok", "test": "sample", "model": "meshnet", "train": "sample",
        "precision": 0.2857142857142857, "auc_roc": 0.6332, "sensitivity": None,
        "accuracy": float("nan"), "coverage": 1.0, "params": 94498.0,
    }  # fmt: skip
    grid.write_summary(pd.DataFrame([row]), tmp_path / "summary.md")
    text = (tmp_path / "summary.md").read_text()
    assert "| meshnet | sample | 0.286 | n/a |" in text, text
    assert "0.2857" not in text and "None" not in text and "nan" not in text


@pytest.mark.parametrize(
    "base, model, reset",
    [
        ("default", "meshnet", ["model.options={}", "model.weights="]),  # from scratch
        ("default", "tinyvgg", ["model.options={}", "model.weights="]),
        ("default", "resnet50", ["model.options={}"]),  # keeps its ImageNet backbone
        ("default", "efficientnet_lite0", []),  # the preset's own model
        ("uncertainty", "densenet121", ["model.options={}"]),
        ("smoke", "tinyvgg", []),  # nothing model-specific to undo
    ],
)
def test_cells_of_other_models_drop_the_presets_model_settings(base, model, reset):
    """The documented `--config default --models meshnet,tinyvgg` grid: the default preset's
    options and ImageNet weights are EfficientNet-Lite0's; a MeshNet cell refused them."""
    from tfmelanoma.config import load_config
    from tfmelanoma.training.tasks import ClassificationTask

    assert grid.own_model_settings(load_config(base), model) == reset
    if model in ("meshnet", "tinyvgg"):
        overrides = [*reset, f"model.name={model}", "data.image_size=64"]
        built = ClassificationTask().build_model(load_config(base, overrides))
        assert built.output_shape == (None, 2)
    if base == "default" and model in ("meshnet", "tinyvgg"):  # what the cell did before
        with pytest.raises(ValueError, match="unexpected keyword argument 'trainable_from'"):
            ClassificationTask().build_model(
                load_config(base, [f"model.name={model}", "model.weights=", "data.image_size=64"])
            )
