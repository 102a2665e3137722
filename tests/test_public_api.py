"""The three public names: `import tfmelanoma` is cheap; load_config -> train -> load_model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tfmelanoma
from tfmelanoma.config import ConfigError
from tfmelanoma.errors import RunFolderError

pytestmark = pytest.mark.slow


def test_import_is_cheap():
    probe = "import sys, tfmelanoma; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert tfmelanoma.__all__ == ["__version__", "load_config", "load_model", "train"]


def test_config_train_load(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    config = tfmelanoma.load_config("smoke", ["run.epochs=1"])
    with pytest.raises(ConfigError, match="run.epoch"):
        tfmelanoma.load_config("smoke", ["run.epoch=1"])

    result = tfmelanoma.train(config, tmp_path / "run")
    assert result.run_dir == tmp_path / "run"
    assert 0.0 <= result.metrics["test"]["auc_roc"] <= 1.0

    model = tfmelanoma.load_model(tmp_path / "run")  # the run folder's best.keras
    probs = model.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0)
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)

    with pytest.raises(RunFolderError, match="already holds a run"):
        tfmelanoma.train(config, tmp_path / "run")
    with pytest.raises(ConfigError, match="run.epochs: the run has 1, given 2"):
        tfmelanoma.train(
            tfmelanoma.load_config("smoke", ["run.epochs=2"]), tmp_path / "run", resume=True
        )
