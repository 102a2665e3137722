"""Training curves from a run's history.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from tfmelanoma.evaluation import plots


def test_training_curves_one_panel_per_metric(tmp_path):
    history = pd.DataFrame(
        {
            "epoch": range(1, 6),  # history.csv counts epochs from 1
            "accuracy": np.linspace(0.5, 0.8, 5),
            "auc": np.linspace(0.5, 0.9, 5),
            "loss": np.linspace(0.9, 0.4, 5),
            "val_accuracy": np.linspace(0.5, 0.7, 5),
            "val_auc": np.linspace(0.5, 0.8, 5),
            "val_loss": np.linspace(0.9, 0.6, 5),
            "learning_rate": [1e-3] * 5,
        }
    )
    history.to_csv(tmp_path / "history.csv", index=False)
    path = plots.training_curves(tmp_path / "history.csv", tmp_path / "history.png", best_epoch=4)
    assert path == tmp_path / "history.png"
    width, height = Image.open(path).size
    # Four panels side by side (loss, accuracy, auc, learning_rate) at 3.6 x 3.2 inches each.
    assert round(width / height) == 4, (width, height)


def test_training_curves_without_epochs_is_none(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n")
    assert plots.training_curves(tmp_path / "history.csv", tmp_path / "h.png") is None
    assert not (tmp_path / "h.png").exists()
