"""End-to-end training runs on the embedded sample: CLI, determinism, kill + resume, bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.interrupt import kill_after_first_epoch

pytestmark = pytest.mark.slow

SMOKE = ["--config", "smoke", "-q", "--set", "run.epochs=3"]


def _env(tmp_path: Path) -> dict:
    # One TFDS data dir per test session keeps the prepared sample out of the user's home.
    # TF_CPP_MIN_LOG_LEVEL is left to the CLI (CI exports 2): its own default is what users get.
    env = dict(os.environ, TFDS_DATA_DIR=str(tmp_path.parent / "tfds"))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def _train(tmp_path: Path, run_dir: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tfmelanoma.train", *SMOKE, "--run-dir", str(run_dir), *extra],
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(tmp_path),
        **kwargs,
    )


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _close(a: dict, b: dict, tol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float) and isinstance(b[key], float):
            assert abs(a[key] - b[key]) <= tol, (key, a[key], b[key])
        else:
            assert a[key] == b[key], key


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("reference")
    run_dir = tmp / "run"
    out = _train(tmp, run_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "test set" in out.stdout and "AUC-ROC" in out.stdout
    # No TensorFlow C++ log lines (absl format "E0000 00:00:..."): without a GPU they are notices
    # such as "failed call to cuInit", which read as errors to a user.
    cpp_lines = re.findall(r"(?m)^[IWEF]\d{4} \d\d:\d\d:\d\d.*$", out.stderr)
    assert not cpp_lines, cpp_lines
    # Nor TFDS's absl warnings while it prepares the sample ("Variant folder ... has no
    # dataset_info.json"): absl resets its logger's level, so the CLI filters it.
    assert " absl: " not in out.stderr, out.stderr[-2000:]
    return run_dir


def test_run_folder_is_complete(reference_run):
    for name in (
        "config.yaml",
        "versions.json",
        "data.json",
        "history.csv",
        "history.png",
        "best.keras",
        "checkpoints/epoch-0003.keras",
        "checkpoints/state.json",
        "metrics.json",
        "evaluation/metrics.json",
        "evaluation/predictions.csv",
        "evaluation/report.md",
    ):
        assert (reference_run / name).exists(), name
    metrics = _metrics(reference_run)
    assert metrics["epochs_done"] == 3 and 1 <= metrics["best_epoch"] <= 3
    assert 0.0 <= metrics["test"]["auc_roc"] <= 1.0
    data = json.loads((reference_run / "data.json").read_text())
    assert sum(data["sizes"].values()) + int(data["combination"][-1].split()[1]) == 557
    history = (reference_run / "history.csv").read_text().strip().splitlines()
    assert len(history) == 1 + 3
    # Epochs from 1, as the printed best epoch and history.png count them.
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2", "3"]


def test_same_seed_same_metrics(reference_run, tmp_path):
    out = _train(tmp_path, tmp_path / "again")
    assert out.returncode == 0, out.stderr[-3000:]
    _close(_metrics(tmp_path / "again")["test"], _metrics(reference_run)["test"])
    assert _metrics(tmp_path / "again")["best_epoch"] == _metrics(reference_run)["best_epoch"]


def test_killed_run_resumes_to_the_same_result(reference_run, tmp_path):
    run_dir = tmp_path / "killed"
    kill_after_first_epoch(
        [sys.executable, "-m", "tfmelanoma.train", *SMOKE, "--run-dir", str(run_dir)],
        _env(tmp_path),
        run_dir,
    )
    assert not (run_dir / "metrics.json").exists()

    # Rerunning without --resume refuses to clobber the interrupted run.
    refused = _train(tmp_path, run_dir)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = _train(tmp_path, run_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _close(_metrics(run_dir)["test"], _metrics(reference_run)["test"])
    history = (run_dir / "history.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2"]


def test_batch_larger_than_split_fails_before_training(tmp_path):
    out = _train(tmp_path, tmp_path / "big", "--set", "run.batch_size=5000")
    assert out.returncode == 2
    assert "batch size 5000 is larger than the training split" in out.stderr
    assert not (tmp_path / "big" / "best.keras").exists()


def test_unknown_dataset_lists_the_valid_names(tmp_path):
    out = _train(tmp_path, tmp_path / "x", "--set", "data.train=isic2099")
    assert out.returncode == 2
    assert "unknown dataset 'isic2099'" in out.stderr and "isic2017" in out.stderr


MIRRORED = """
import sys
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tfmelanoma import config as c
from tfmelanoma.training import runner
cfg = c.load_config("smoke", ["run.epochs=1", "run.distribute=mirrored", "run.evaluate=false"])
result = runner.train(cfg, Path(sys.argv[1]), verbose=2)
print("REPLICAS", result.metrics["replicas"], result.metrics["distribution"])
print("EPOCHS", result.metrics["epochs_done"])
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path / "run")],
        capture_output=True, text=True, timeout=900, env=_env(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "REPLICAS 2 MirroredStrategy" in out.stdout and "EPOCHS 1" in out.stdout
    assert (tmp_path / "run" / "best.keras").exists()


def test_mixed_precision_and_xla_switches(tmp_path):
    out = _train(
        tmp_path, tmp_path / "mp", "--set", "run.epochs=1", "--set", "run.mixed_precision=true",
        "--set", "run.jit_compile=true",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    import keras

    model = keras.models.load_model(tmp_path / "mp" / "best.keras")
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in model.layers)
    assert 0.0 <= _metrics(tmp_path / "mp")["test"]["auc_roc"] <= 1.0
