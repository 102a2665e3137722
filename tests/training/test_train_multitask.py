"""run.task=multitask through the engine: diagnosis + age (mmtl) on the embedded sample, which
has ages for about half its images (the rest -1, unknown).

One short CLI run (tiny MeshNet backbone, 32 px, 3 epochs of 4 steps) is checked against a hand
computation from its own predictions; a run killed after epoch 1 and resumed must end as the
uninterrupted one did; the per-head targets and weights of the tf.data pipeline are checked on
hand-made examples, eagerly and inside a dataset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pandas as pd
import pytest

from tests.training.interrupt import kill_after_first_epoch
from tfmelanoma.config import AugmentConfig, load_config
from tfmelanoma.training import runner
from tfmelanoma.training.multitask_task import MultitaskTask

pytestmark = pytest.mark.slow

OPTIONS = "model.options={backbone: meshnet, age: regression, width: 8, dilations: [1, 2, 1]}"
TINY = ["run.task=multitask", "model.name=mmtl", OPTIONS, "model.age_loss_weight=0.01"]


def _overrides(data_dir: Path, *extra: str) -> list[str]:
    return [f"data.data_dir={data_dir}", *TINY, *extra]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tfds")


def _cli(data_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "tfmelanoma.train", "--config", "smoke", "-q"]
    for item in _overrides(data_dir, "run.epochs=3"):  # 3: time to stop one after epoch 1
        argv += ["--set", item]
    return [*argv, "--run-dir", str(run_dir), *extra]


def _train(data_dir: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    # A process per run: like every run of the engine, reproducible from a fresh process.
    out = subprocess.run(
        _cli(data_dir, run_dir, *extra), capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir) -> tuple[Path, str]:
    """The CLI's run: its folder and what it printed."""
    run_dir = tmp_path_factory.mktemp("mt") / "run"
    return run_dir, _train(data_dir, run_dir).stdout


def _test_ages_and_images(data_dir: Path):
    """The test split's ages and 32 px images straight from its TFDS examples (not the index)."""
    from tfmelanoma.data.pipeline import _decode
    from tfmelanoma.training.data import load_splits

    splits = load_splits(load_config("smoke", _overrides(data_dir)))
    ds = splits.test.as_tf_dataset().map(lambda ex: (_decode(ex, 32, "label")[0], ex["age"]))
    images, ages = zip(*((x.numpy(), int(a)) for x, a in ds), strict=True)
    return np.array(ages), np.stack(images), splits


def test_run_reports_diagnosis_and_age(run, data_dir):
    run_dir, printed = run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == "multitask" and metrics["epochs_done"] == 3
    assert 0 <= metrics["best_val_diagnosis_auc"] <= 1  # the monitor: diagnosis AUC
    assert (run_dir / "best.keras").is_file()
    assert (run_dir / "evaluation" / "report.md").is_file()  # the classifier's report
    test = metrics["test"]
    assert 0 <= test["auc_roc"] <= 1 and test["n_test"] > 0
    history = pd.read_csv(run_dir / "history.csv")
    for column in ("val_diagnosis_auc", "val_age_mae_years", "age_mae_years", "val_age_loss"):
        assert np.isfinite(history[column]).all(), column
    assert json.loads((run_dir / "data.json").read_text())["known_ages"]["train"] > 0

    # The age MAE by hand: best.keras on the test images, |years - age| over known ages only.
    ages, images, splits = _test_ages_and_images(data_dir)
    np.testing.assert_array_equal(ages, splits.test.frame["age"])  # the index's age column
    known = ages >= 0
    assert 0 < known.sum() < len(ages)  # the sample has both: a real test of the weighting
    model = keras.models.load_model(run_dir / "best.keras")
    years = model.predict(images, verbose=0)["age"][:, 0]
    mae = np.mean(np.abs(years[known] - ages[known]))
    assert test["n_age_known"] == known.sum()
    assert test["age_mae_years"] == pytest.approx(mae, rel=1e-4)
    # In years, and learned: closer than the untrained head's ~0 years (MAE = mean age).
    assert test["age_mae_years"] < np.mean(ages[known])
    assert f"MAE in years {test['age_mae_years']:.2f} over the {known.sum()} images" in printed
    assert "AUC-ROC" in printed


def test_killed_run_resumes_to_the_same_result(run, data_dir, tmp_path):
    run_dir = tmp_path / "killed"
    kill_after_first_epoch(_cli(data_dir, run_dir), dict(os.environ), run_dir)
    _train(data_dir, run_dir, "--resume")
    resumed = pd.read_csv(run_dir / "history.csv")
    reference = pd.read_csv(run[0] / "history.csv")
    assert list(resumed["epoch"]) == [1, 2, 3]
    for column in ("val_diagnosis_auc", "val_age_mae_years", "loss"):
        np.testing.assert_allclose(resumed[column], reference[column], rtol=1e-4, err_msg=column)
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert test["age_mae_years"] == pytest.approx(
        json.loads((run[0] / "metrics.json").read_text())["test"]["age_mae_years"], rel=1e-4
    )


def _examples():
    import tensorflow as tf

    images = np.random.default_rng(0).integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    return tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": [0, 1, 1, 0], "age": np.array([-1, 30, 80, -1], np.int32)}
    )


@pytest.mark.parametrize("mode, expected", [("regression", [[0], [30], [80], [0]]),
                                            ("bins", [0, 1, 4, 0])])  # fmt: skip
def test_unknown_ages_weigh_zero_in_the_batches(mode, expected):
    from functools import partial

    from tfmelanoma.data import pipeline
    from tfmelanoma.models.multitask import age_target

    target = partial(age_target, mode=mode)
    common = dict(image_size=32, batch_size=4, num_classes=2, age_target=target)
    _, y, w = next(iter(pipeline.eval_dataset(_examples(), **common)))
    np.testing.assert_array_equal(w["age"], [0, 1, 1, 0])
    np.testing.assert_array_equal(w["diagnosis"], [1, 1, 1, 1])
    np.testing.assert_array_equal(y["age"], expected)
    np.testing.assert_array_equal(y["diagnosis"], [[1, 0], [0, 1], [0, 1], [1, 0]])
    # Training batches (shuffled): class weights on the diagnosis head only.
    train, _ = pipeline.training_dataset(
        _examples(), augment_config=AugmentConfig(enabled=False), seed=0,
        class_weight={0: 0.5, 1: 2.0}, **common,
    )  # fmt: skip
    _, y, w = next(iter(train))
    labels = np.argmax(y["diagnosis"], -1)
    np.testing.assert_array_equal(w["diagnosis"], np.where(labels == 1, 2.0, 0.5))
    known = np.asarray(w["age"]) == 1
    assert known.sum() == 2 and np.all(np.asarray(y["age"]).reshape(4, -1)[~known] == 0)
    # The same target function eagerly, as multitask_targets uses it.
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(target(np.array([-1.0, 30.0, 80.0, -1.0]))),
        np.reshape(expected, (4, -1)) if mode == "regression" else expected,
    )


@pytest.mark.parametrize("pipeline", ["numpy", "grain", "tf_cached"])
def test_other_pipelines_are_refused(pipeline):
    config = load_config("smoke", [*TINY, f"data.pipeline={pipeline}"])
    with pytest.raises(ValueError, match=f"data.pipeline='{pipeline}'.*data.pipeline=tf"):
        runner.check_config(config)


def test_a_classifier_or_a_bad_age_mode_is_refused():
    with pytest.raises(ValueError, match="run.task=classification"):
        runner.check_config(load_config("smoke", ["run.task=multitask"]))  # meshnet
    bad = [*TINY[:2], "model.options={backbone: meshnet, age: years}"]
    with pytest.raises(ValueError, match="model.options.age='years'"):
        runner.check_config(load_config("smoke", bad))


def test_training_data_without_ages_is_refused(monkeypatch):
    """A dataset whose images all have age -1 (e.g. PH2): a clear error before any training."""
    from tfmelanoma.training import tasks

    def split(ages):
        return SimpleNamespace(frame=pd.DataFrame({"age": ages}))

    no_ages = SimpleNamespace(train=split([-1, -1]), validation=split([-1]), test=split([40]))
    monkeypatch.setattr(tasks.ClassificationTask, "load_data", lambda self, c, p: no_ages)
    config = load_config("smoke", [*TINY, "data.train=ph2"])
    with pytest.raises(ValueError, match="data.train=ph2: no training image has a known age"):
        MultitaskTask().load_data(config, "tf")
