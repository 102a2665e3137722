"""A run kept by a `run.monitor` other than the task's own metric reports where that metric
peaked (metrics.json `task_metric`, and the terminal summary), so a kept epoch that ranks worse
than a later one does not pass unnoticed (docs/training.md, "Knowledge distillation")."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tfmelanoma.config import load_config
from tfmelanoma.train import _print_summary
from tfmelanoma.training import runner


@pytest.mark.slow
def test_val_loss_run_reports_the_val_auc_peak(tmp_path):
    cfg = load_config("smoke", ["run.epochs=3", "run.monitor=val_loss", "run.evaluate=false"])
    runner.train(cfg, tmp_path / "run", verbose=0)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    history = pd.read_csv(tmp_path / "run" / "history.csv").set_index("epoch")
    assert metrics["best_epoch"] == int(history["val_loss"].idxmin())
    assert metrics["task_metric"] == {
        "metric": "val_auc",
        "at_best_epoch": pytest.approx(history["val_auc"][metrics["best_epoch"]]),
        "best": pytest.approx(history["val_auc"].max()),
        "best_epoch": int(history["val_auc"].idxmax()),
    }


@pytest.mark.slow
def test_the_tasks_own_monitor_reports_nothing_more(tmp_path):
    runner.train(
        load_config("smoke", ["run.epochs=1", "run.evaluate=false"]), tmp_path / "r", verbose=0
    )
    assert "task_metric" not in json.loads((tmp_path / "r" / "metrics.json").read_text())


def test_summary_names_the_better_epoch_by_the_tasks_metric(capsys):
    peak = {"metric": "val_auc", "at_best_epoch": 0.7766, "best": 0.8603, "best_epoch": 26}
    _print_summary(Path("runs/x"), {"best_epoch": 3, "epochs_done": 30, "task_metric": peak})
    out = capsys.readouterr().out
    assert "best epoch: 3 of 30" in out
    assert "val_auc there: 0.777; its best, 0.860, at epoch 26" in out
    _print_summary(Path("runs/x"), {"best_epoch": 26, "epochs_done": 30, "task_metric": peak})
    assert "val_auc there" not in capsys.readouterr().out  # the same epoch: nothing to add


def test_history_without_the_column_is_no_report(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n1,0.5,0.6\n")
    assert runner._peak_of(tmp_path / "history.csv", "val_auc", 1) is None
