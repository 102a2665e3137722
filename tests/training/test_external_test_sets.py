"""`train` with several test sets: one evaluation folder and one metrics block per test set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfmelanoma.config import Config, DataConfig
from tfmelanoma.datasets.materialise import SplitView
from tfmelanoma.training import runner
from tfmelanoma.training.data import Splits


def _view(name: str, n: int, seed: int) -> SplitView:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "dataset": name,
            "split": "train",
            "position": range(n),
            "image_id": [f"{name}_{i}" for i in range(n)],
            "label": (rng.random(n) < 0.4).astype(int),
        }
    )
    return SplitView(frame, None, name)


def test_each_test_set_gets_its_folder_and_summary(tmp_path, monkeypatch):
    def predict_view(model, view, config, pipeline):
        y = view.labels
        p = np.clip(y * 0.6 + np.random.default_rng(len(y)).random(len(y)) * 0.5, 0, 1)
        return y, np.stack([1 - p, p], axis=1), list(view.frame["image_id"])

    monkeypatch.setattr(runner.inputs, "predict_view", predict_view)
    monkeypatch.setattr(runner.keras.models, "load_model", lambda path: None)
    tests = {"ph2": _view("ph2", 40, 1), "derm7pt:test": _view("derm7pt", 50, 2)}
    splits = Splits(
        train=_view("a", 10, 0),
        validation=_view("a", 60, 3),
        test=_view("all", 90, 4),
        test_sets=tests,
    )
    config = Config(data=DataConfig(test="ph2,derm7pt:test"))
    summaries = runner._evaluate(config, splits, tmp_path, "tf")
    assert list(summaries) == ["ph2", "derm7pt:test"]
    for folder, name in (("ph2", "ph2"), ("derm7pt_test", "derm7pt:test")):
        assert (tmp_path / "evaluation" / folder / "report.md").is_file()
        assert 0.0 <= summaries[name]["auc_roc"] <= 1.0
        rows = (tmp_path / "evaluation" / folder / "predictions.csv").read_text().splitlines()
        assert len(rows) == 1 + len(tests[name])


def test_summary_names_each_test_set_report(capsys):
    from pathlib import Path

    from tfmelanoma.train import _print_summary

    block = {"auc_roc": 0.7, "n_test": 40}
    metrics = {"best_epoch": 1, "epochs_done": 1, "test": block}
    metrics["test_sets"] = {"ph2": block, "derm7pt:test": block}
    _print_summary(Path("runs/x"), metrics)
    out = capsys.readouterr().out
    assert "test sets: ph2, derm7pt:test (the numbers above are ph2's)" in out
    assert f"report (derm7pt:test): {Path('runs/x/evaluation/derm7pt_test/report.md')}" in out


def test_evaluate_picks_one_of_a_runs_test_sets(monkeypatch):
    import argparse

    import pytest

    from tfmelanoma import evaluate
    from tfmelanoma.training import data as training_data

    class View:
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def as_tf_dataset(self):
            return f"dataset of {self.n}"

    splits = Splits(
        train=View(10), validation=View(6), test=View(90),
        summary={"sizes": {"test": 90, "validation": 6}},
        test_sets={"ph2": View(40), "derm7pt:test": View(50)},
    )  # fmt: skip
    monkeypatch.setattr(training_data, "load_splits", lambda config, **kw: splits)
    args = argparse.Namespace(
        class_map=None, test=None, images_dir=None, val=None, val_images_dir=None,
        no_val=False, data_dir=None, manual_dir=None, split="test",
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"2 test sets \(ph2, derm7pt:test\).*--test NAME"):
        evaluate._sources(args, ["non_melanoma", "melanoma"], "label", Config())
    args.test = "derm7pt:test"
    test, n, val, n_val = evaluate._sources(args, ["non_melanoma", "melanoma"], "label", Config())
    assert (test, n, val, n_val) == ("dataset of 50", 50, "dataset of 6", 6)
