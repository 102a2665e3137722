"""The decoded-cache pipelines, augmentation in the compiled step, exact resume: `grain` on
Keras-on-JAX with TensorFlow hidden, and `tf_cached` (tf.data over the same cache) on TensorFlow.

A run killed after its first epoch and resumed must end with the uninterrupted run's weights and
metrics: batch g of the run is a pure function of (seed, epoch, step), and the augmentation
parameters travel with the batch, so nothing random has to be restored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.tf_hidden import hidden_cli
from tests.training.interrupt import kill_after_first_epoch

pytestmark = pytest.mark.slow

SMOKE = ["--config", "smoke", "-q", "--set", "run.epochs=3"]
BACKEND = {"grain": "jax", "tf_cached": "tensorflow"}


@pytest.fixture(scope="module", params=["grain", "tf_cached"])
def pipeline(request) -> str:
    return request.param


def _cmd(pipeline: str, run_dir: Path, *extra: str) -> list[str]:
    # grain: as on a GPU host without TensorFlow.
    cli = (
        ["-c", hidden_cli("tfmelanoma.train")]
        if pipeline == "grain"
        else ["-m", "tfmelanoma.train"]
    )
    return [sys.executable, *cli, *SMOKE, "--set", f"data.pipeline={pipeline}",
            "--run-dir", str(run_dir), *extra]  # fmt: skip


def _env(pipeline: str, data_dir: Path) -> dict:
    return dict(os.environ, KERAS_BACKEND=BACKEND[pipeline], TFDS_DATA_DIR=str(data_dir))


def _train(pipeline: str, data_dir: Path, run_dir: Path, *extra: str):
    out = subprocess.run(
        _cmd(pipeline, run_dir, *extra), capture_output=True, text=True, timeout=900,
        env=_env(pipeline, data_dir),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(path).get_weights()


@pytest.fixture(scope="module")
def reference_run(pipeline, sample_array_record, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp(f"{pipeline}_reference") / "run"
    out = _train(pipeline, sample_array_record, run_dir)
    if pipeline == "grain":
        assert "TF_LOADED False" in out.stdout
    return run_dir


def test_trains_from_the_decoded_cache_and_saves_the_model_alone(
    pipeline, reference_run, sample_array_record
):
    metrics = json.loads((reference_run / "metrics.json").read_text())
    assert metrics["pipeline"] == pipeline and metrics["epochs_done"] == 3
    # Training images stored at 32 x 8/7 -> 40 px (crops take their pixels from there),
    # validation at the model's 32 px.
    sizes = sorted(
        p.name.split("-")[1] for p in (sample_array_record / "tfmelanoma_decoded").iterdir()
    )
    assert sizes == ["32px", "40px"]
    import keras

    from tfmelanoma.data.device_augment import DeviceAugment

    best = keras.models.load_model(reference_run / "best.keras")
    assert not any(isinstance(layer, DeviceAugment) for layer in best.layers)
    assert best.input_shape == (None, 32, 32, 3)
    checkpoint = keras.models.load_model(reference_run / "checkpoints" / "epoch-0003.keras")
    assert any(isinstance(layer, DeviceAugment) for layer in checkpoint.layers)


def test_killed_run_resumes_to_the_same_weights(
    pipeline, reference_run, sample_array_record, tmp_path
):
    run_dir = tmp_path / "killed"
    kill_after_first_epoch(_cmd(pipeline, run_dir), _env(pipeline, sample_array_record), run_dir)
    _train(pipeline, sample_array_record, run_dir, "--resume")
    final = "checkpoints/epoch-0003.keras"
    for got, want in zip(_weights(run_dir / final), _weights(reference_run / final), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    expected = json.loads((reference_run / "metrics.json").read_text())["test"]
    got = json.loads((run_dir / "metrics.json").read_text())["test"]
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-6), key
