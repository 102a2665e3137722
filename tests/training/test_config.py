"""The typed config: presets, overrides, and errors that name the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tfmelanoma import config as c


def test_every_preset_loads():
    assert {"default", "smoke", "uncertainty", "small_cnn", "multiclass"} <= set(c.presets())
    for name in c.presets():
        assert isinstance(c.load_config(name), c.Config)


def test_uncertainty_preset_is_the_paper_with_the_transfer_recipe():
    cfg = c.load_config("uncertainty")
    assert cfg.data.image_size == 224 and cfg.run.batch_size == 32
    assert (cfg.optimizer.name, cfg.optimizer.learning_rate, cfg.optimizer.momentum) == (
        "sgd",
        0.001,
        0.9,
    )
    # The recipe (issue #18): head warm-up, then the base at a tenth of the head's rate.
    assert cfg.optimizer.schedule == "warmup_cosine" and cfg.optimizer.head_warmup_epochs > 0
    assert 0 < cfg.optimizer.backbone_lr_scale < 1 and cfg.run.early_stopping > 0
    assert cfg.model.options == {"trainable_from": 0} and cfg.model.weights == "imagenet"
    # The paper's own schedule is one --set away.
    assert (cfg.optimizer.step_epochs, cfg.optimizer.step_factor) == (7, 0.1)


@pytest.mark.parametrize("name", c.presets())
def test_every_preset_builds_and_compiles_its_model(name):
    """Each preset's model, options, loss and optimizer are valid (ImageNet weights aside:
    they need a download, so the model is built from random init)."""
    import keras

    from tfmelanoma.training import runner

    cfg = c.load_config(name, ["model.weights="])
    runner.check_config(cfg)
    model = runner.build_model(cfg)
    runner.compile_model(model, cfg, steps_per_epoch=10)
    output = model.output  # multitask: {"diagnosis": (None, K), "age": ...}
    output = output["diagnosis"] if isinstance(output, dict) else output
    assert output.shape[-1] == cfg.model.num_classes
    assert model.input_shape[1:3] == (cfg.data.image_size, cfg.data.image_size)
    # The base fine-tuned (rates set by the optimizer).
    if name in ("uncertainty", "transfer", "multitask"):
        trainable = sum(keras.ops.size(w) for w in model.trainable_weights)
        assert int(trainable) > 0.9 * model.count_params()


def test_overrides_parse_yaml_scalars_and_lists():
    cfg = c.load_config(
        "default",
        [
            "run.epochs=3",
            "data.train=isic2017,ph2",
            "augment.hflip=false",
            "optimizer.learning_rate=1e-4",
            "model.options={dropout: 0.3}",
        ],
    )
    assert cfg.run.epochs == 3 and cfg.data.train == ("isic2017", "ph2")
    assert cfg.augment.hflip is False and cfg.optimizer.learning_rate == pytest.approx(1e-4)
    assert cfg.model.options == {"dropout": 0.3}


@pytest.mark.parametrize(
    "override, message",
    [
        ("run.epoch=3", "unknown config key 'run.epoch'; did you mean 'run.epochs'?"),
        ("run.epochs=three", "run.epochs: expected int, got 'three'"),
        ("augment.hflip=2", "augment.hflip: expected true or false"),
        ("optimizer.name=rmsprop", "optimizer.name: 'rmsprop' is not one of adam, adamw, sgd"),
        ("run.epochs", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(c.ConfigError) as err:
        c.load_config("default", [override])
    assert message in str(err.value)


def test_unknown_preset_lists_presets():
    with pytest.raises(c.ConfigError, match="unknown preset 'nope'; presets: .*smoke"):
        c.load_config("nope")


def test_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  image_sise: 64\n")
    with pytest.raises(
        c.ConfigError,
        match=r"bad.yaml: unknown config key 'data.image_sise'; did you mean 'data.image_size'",
    ):
        c.load_config(str(bad))
    with pytest.raises(c.ConfigError, match="cannot read config file"):
        c.load_config(str(tmp_path / "missing.yaml"))


def test_saved_config_round_trips(tmp_path):
    cfg = c.load_config("uncertainty", ["run.seed=7"])
    c.save_config(cfg, tmp_path / "config.yaml")
    assert c.load_config(str(tmp_path / "config.yaml")) == cfg


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tfmelanoma.train", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_key_with_the_value_a_plain_run_uses():
    out = _cli("--help")
    assert out.returncode == 0
    # The 'default' preset's values (a run without --config), not the dataclass defaults:
    # help once said data.balance = 'none' while the run used 'inverse'.
    preset = c.flat(c.load_config("default"))
    assert preset.keys() == c.flat_defaults().keys()
    for key, value in preset.items():
        assert f"{key} = {value!r}" in out.stdout
    assert "data.balance = 'inverse'" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--set", "run.epoch=3"], "did you mean 'run.epochs'?"),
        (["--set", "model.name=resnet5O"], "unknown model 'resnet5O'"),
        (["--set", "model.num_classes=9"], "model.num_classes=9 does not fit data.label='label'"),
        (["--set", "data.image_size=8"], "data.image_size=8 is too small"),
    ],
)
def test_cli_errors_are_one_line(args, message):
    out = _cli(*args)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and message in lines[0], out.stderr


def test_grain_cache_size_defaults_to_room_for_crops_and_is_checked():
    from tfmelanoma.training import inputs

    assert inputs.cache_size(c.load_config("smoke", ["data.image_size=224"])) == 256
    assert inputs.cache_size(c.load_config("smoke", ["data.image_size=32"])) == 40
    no_crop = ["data.image_size=224", "augment.crop_scale=1", "augment.zoom=0"]
    assert inputs.cache_size(c.load_config("smoke", no_crop)) == 224
    assert inputs.cache_size(c.load_config("smoke", ["data.cache_size=300"])) == 300
    with pytest.raises(c.ConfigError, match="data.cache_size=16: expected 0 .* >= data.image_size"):
        c.load_config("smoke", ["data.cache_size=16"])
    assert c.load_config("smoke", ["data.pipeline=grain"]).data.pipeline == "grain"


def test_split_seed_lets_seeds_share_their_validation_split(tmp_path):
    """Ensembles of seeds need one validation split (evaluate fits temperature and rejection on
    it): data.split_seed fixes it while run.seed still changes; -1 follows run.seed."""
    from tfmelanoma.training.data import load_splits

    def validation_ids(*overrides: str) -> list[str]:
        config = c.load_config("smoke", [f"data.data_dir={tmp_path}", *overrides])
        return sorted(load_splits(config).validation.frame["image_id"])

    base = validation_ids("run.seed=0")
    assert len(base) > 10
    assert validation_ids("run.seed=1", "data.split_seed=0") == base
    assert validation_ids("run.seed=0", "data.split_seed=1") == validation_ids("run.seed=1")
    assert validation_ids("run.seed=1") != base
    with pytest.raises(c.ConfigError, match=r"data.split_seed=-2: expected a seed >= 0, or -1"):
        c.load_config("smoke", ["data.split_seed=-2"])
