"""`python -m tfmelanoma.train` on Keras-on-JAX (and torch) with TensorFlow hidden: the GPU host's path.

The GPU host has no TensorFlow (`../shared/GPU.md`), so these runs hide it (`tests/tf_hidden.py`):
datasets are prepared here beforehand as ArrayRecord, and the run must read them through
`tfds.data_source`, train, checkpoint, resume, use two JAX devices through
`keras.distribution.DataParallel`, and evaluate, all without importing TensorFlow.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tf_hidden import hidden_cli
from tests.training.interrupt import kill_after_first_epoch

pytestmark = pytest.mark.slow

SMOKE = ["--config", "smoke", "-q", "--set", "run.epochs=3"]
CLI = hidden_cli("tfmelanoma.train")


@pytest.fixture(scope="module")
def data_dir(sample_array_record) -> Path:
    return sample_array_record


def _env(data_dir: Path, devices: int = 1) -> dict:
    env = dict(os.environ, KERAS_BACKEND="jax", TFDS_DATA_DIR=str(data_dir))
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _cmd(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", CLI, *SMOKE, "--run-dir", str(run_dir), *extra]


def _train(data_dir: Path, run_dir: Path, *extra: str, devices: int = 1):
    return subprocess.run(
        _cmd(run_dir, *extra),
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(data_dir, devices),
    )


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def reference_run(data_dir, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("jax_reference") / "run"
    out = _train(data_dir, run_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "TF_LOADED False" in out.stdout
    return run_dir


def test_trains_and_evaluates_without_tensorflow(reference_run):
    metrics = _metrics(reference_run)
    assert metrics["backend"] == "jax" and metrics["pipeline"] == "numpy"
    assert metrics["replicas"] == 1 and metrics["epochs_done"] == 3
    assert 0.0 <= metrics["test"]["auc_roc"] <= 1.0
    for name in (
        "best.keras",
        "checkpoints/epoch-0003.keras",
        "history.csv",
        "history.png",
        "evaluation/report.md",
    ):
        assert (reference_run / name).exists(), name
    versions = json.loads((reference_run / "versions.json").read_text())
    assert versions["keras_backend"] == "jax" and "jax" in versions
    assert "tensorflow" not in versions
    # The test split's predictions are the whole split, in the index's order, once each.
    with open(reference_run / "evaluation" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    data = json.loads((reference_run / "data.json").read_text())
    assert len(rows) == data["sizes"]["test"]
    assert len({r["image_id"] for r in rows}) == len(rows)


def test_same_seed_same_metrics(reference_run, data_dir, tmp_path):
    out = _train(data_dir, tmp_path / "again")
    assert out.returncode == 0, out.stderr[-3000:]
    assert _metrics(tmp_path / "again")["test"] == _metrics(reference_run)["test"]


def test_killed_run_resumes_to_the_same_result(reference_run, data_dir, tmp_path):
    run_dir = tmp_path / "killed"
    kill_after_first_epoch(_cmd(run_dir), _env(data_dir), run_dir)

    resumed = _train(data_dir, run_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    history = (run_dir / "history.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2", "3"]  # epochs from 1
    expected, got = _metrics(reference_run)["test"], _metrics(run_dir)["test"]
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-5), key


def test_data_parallel_on_two_devices(data_dir, tmp_path):
    run_dir = tmp_path / "dp"
    out = _train(data_dir, run_dir, "--set", "run.distribute=mirrored", devices=2)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "TF_LOADED False" in out.stdout
    metrics = _metrics(run_dir)
    assert metrics["replicas"] == 2
    assert metrics["distribution"] == "keras.distribution.DataParallel"
    # Validation (89 images, last batch padded to split across 2 devices) counts real images
    # only: accuracy is a whole number of correct images out of the split's size.
    n_val = json.loads((run_dir / "data.json").read_text())["sizes"]["validation"]
    assert n_val % 2 == 1  # so the last batch really was padded
    with open(run_dir / "history.csv") as f:
        for row in csv.DictReader(f):
            correct = float(row["val_accuracy"]) * n_val
            assert abs(correct - round(correct)) < 1e-3, row["val_accuracy"]


def test_batch_that_does_not_split_between_devices_fails_first(data_dir, tmp_path):
    out = _train(
        data_dir, tmp_path / "odd", "--set", "run.distribute=mirrored",
        "--set", "run.batch_size=15", devices=2,
    )  # fmt: skip
    assert out.returncode == 2
    assert "run.batch_size=15 does not split evenly between 2 replicas" in out.stderr
    assert not (tmp_path / "odd").exists()


def test_tfrecord_dataset_is_refused_with_what_to_do(tmp_path):
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401

    tfrecord_dir = tmp_path / "tfds_tfrecord"
    builder = tfds.builder(
        "isic_archive/sample", data_dir=str(tfrecord_dir), file_format="tfrecord"
    )
    builder.download_and_prepare(file_format="tfrecord")
    out = _train(tfrecord_dir, tmp_path / "run")
    assert out.returncode == 2
    # The sample from an older tfmelanoma (TFRecord): re-preparing it is safe, so the CLI says
    # to delete it (tests/datasets covers the message for any other dataset).
    assert "was prepared as tfrecord by an older tfmelanoma" in out.stderr
    assert f"the embedded sample in {tfrecord_dir}" in out.stderr and "delete" in out.stderr


def test_unprepared_dataset_without_tensorflow_says_where_to_prepare(tmp_path):
    out = _train(tmp_path / "empty_tfds", tmp_path / "run")
    assert out.returncode == 2
    assert "is not prepared" in out.stderr and "needs TensorFlow" in out.stderr


def test_torch_backend_trains_too(data_dir, tmp_path):
    env = dict(_env(data_dir), KERAS_BACKEND="torch")
    out = subprocess.run(
        _cmd(tmp_path / "torch", "--set", "run.epochs=1"),
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "TF_LOADED False" in out.stdout
    metrics = _metrics(tmp_path / "torch")
    assert metrics["backend"] == "torch" and metrics["pipeline"] == "numpy"
    assert 0.0 <= metrics["test"]["auc_roc"] <= 1.0
