"""Weight averaging (`optimizer.ema_momentum`): validation scores the average, best.keras holds
it, and the epoch checkpoint keeps raw weights and averages apart so that a resume continues."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfmelanoma.config import ConfigError, OptimizerConfig, load_config
from tfmelanoma.training import checkpoints
from tfmelanoma.training.optim import check_ema, make_optimizer


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(v.value) for v in model.trainable_weights]


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    return x, keras.utils.to_categorical((x[:, 0] + x[:, 1] > 0).astype(int), 2)


def _fit(folder, momentum: float, epochs: int = 1, model=None, state=None):
    """`epochs` epochs with the runner's callbacks; `model` + `state`: resumed from those."""
    x, y = _data()
    if model is None:
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
        )
        cfg = OptimizerConfig(name="sgd", learning_rate=0.5, ema_momentum=momentum)
        model.compile(
            optimizer=make_optimizer(cfg, steps_per_epoch=8, epochs=epochs),
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        )
    checkpoint = checkpoints.ResumableCheckpoint(
        folder / "checkpoints", folder / "best.keras", monitor="val_loss", state=state
    )
    callbacks = [checkpoint]
    if momentum:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights())
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=epochs,
        initial_epoch=state.epochs_done if state else 0,
        shuffle=False,
        validation_data=(x, y),
        callbacks=callbacks,
        verbose=0,
    )
    return model, (x, y), history.history["val_loss"][-1]


def test_validation_and_best_checkpoint_use_the_averaged_weights(tmp_path):
    model, (x, y), val_loss = _fit(tmp_path, momentum=0.9)
    best = keras.models.load_model(tmp_path / "best.keras")
    epoch = keras.models.load_model(tmp_path / "checkpoints" / "epoch-0001.keras")
    averages = [
        keras.ops.convert_to_numpy(v.value) for v in epoch.optimizer._model_variables_moving_average
    ]
    # best.keras is the average; fit's end put the average into the model too.
    for b, a, m in zip(_weights(best), averages, _weights(model), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(b, m, rtol=1e-6, atol=1e-7)
    # The epoch checkpoint holds the raw weights, which the last steps moved away from it.
    assert any(not np.allclose(r, a) for r, a in zip(_weights(epoch), averages, strict=True)), (
        "raw weights equal their average: the checkpoint would lose the raw state"
    )
    # The logged validation loss is the averaged model's, not the raw one's.
    assert best.evaluate(x, y, verbose=0) == pytest.approx(val_loss, rel=1e-5)
    assert epoch.evaluate(x, y, verbose=0) != pytest.approx(val_loss, rel=1e-3)


def test_without_ema_best_checkpoint_is_the_raw_model(tmp_path):
    model, _, _ = _fit(tmp_path, momentum=0.0)
    assert not model.optimizer.use_ema
    best = keras.models.load_model(tmp_path / "best.keras")
    for b, m in zip(_weights(best), _weights(model), strict=True):
        np.testing.assert_array_equal(b, m)


def test_resume_from_the_epoch_checkpoint_continues_exactly(tmp_path):
    straight, _, _ = _fit(tmp_path / "straight", 0.9, epochs=2)
    _fit(tmp_path / "killed", 0.9, epochs=1)
    folder = tmp_path / "killed" / "checkpoints"
    state = checkpoints.load_state(folder)
    resumed, _, _ = _fit(
        tmp_path / "killed",
        0.9,
        epochs=2,
        model=keras.models.load_model(folder / state.model_file),
        state=state,
    )
    for r, s in zip(_weights(resumed), _weights(straight), strict=True):
        np.testing.assert_allclose(r, s, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("value", [-0.1, 1.0, float("nan")])
def test_ema_momentum_out_of_range_is_refused(value):
    with pytest.raises(ConfigError, match=r"optimizer\.ema_momentum"):
        load_config("smoke", overrides=[f"optimizer.ema_momentum={value}"])


def _bn_model(trainable_bn: bool) -> keras.Model:
    inputs = keras.Input((6,))
    bn = keras.layers.BatchNormalization(name="bn")
    bn.trainable = trainable_bn
    return keras.Model(inputs, keras.layers.Dense(2)(bn(inputs)), name="tiny")


def test_ema_is_refused_where_batchnorm_trains():
    cfg = OptimizerConfig(ema_momentum=0.99)
    with pytest.raises(ConfigError, match=r"ema_momentum=0\.99: tiny has 1 BatchNormalization.*bn"):
        check_ema(cfg, _bn_model(trainable_bn=True))
    check_ema(cfg, _bn_model(trainable_bn=False))  # frozen statistics: consistent
    check_ema(OptimizerConfig(), _bn_model(trainable_bn=True))  # off


def test_train_command_refuses_ema_on_meshnet_and_leaves_no_run_folder(tmp_path):
    run_dir = tmp_path / "run"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfmelanoma.train",
            "--config",
            "smoke",
            "-q",
            "--run-dir",
            str(run_dir),
            "--set",
            "optimizer.ema_momentum=0.99",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TFDS_DATA_DIR=str(tmp_path / "tfds")),
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "optimizer.ema_momentum=0.99" in out.stderr and "BatchNormalization" in out.stderr
    assert not run_dir.exists()
