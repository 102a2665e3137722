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


@pytest.mark.parametrize("cli_imported", [False, True])
def test_train_is_callable_whether_or_not_the_cli_module_was_imported(cli_imported):
    code = (
        "import tfmelanoma, inspect\n"
        + ("import tfmelanoma.train\n" if cli_imported else "")
        + "print(callable(tfmelanoma.train), type(tfmelanoma.train).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    kind = "_CallableModule" if cli_imported else "function"
    assert out.stdout.strip() == f"True {kind}"


def test_config_train_load(tmp_path, monkeypatch):
    import tfmelanoma.train  # noqa: F401  (the CLI module; the call below must still work)

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
