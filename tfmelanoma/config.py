"""One typed, frozen config for training: data / augment / model / optimizer / run.

`run.task` picks what is trained: `classification` (the default), `segmentation` (lesion
masks; presets `segmentation_paper`, `segmentation_smoke`) or `multitask` (diagnosis + age,
model `mmtl`; preset `multitask`). All run through one engine,
`tfmelanoma.training.runner`; `tfmelanoma.training.tasks` says what each task reads from here.

Defaults live in the dataclasses; presets are YAML files in `tfmelanoma/configs/` (or any path);
`--set a.b=value` overrides single keys, parsed as YAML scalars. An unknown key is an error that
names the key and the closest valid one; a value of the wrong type is an error naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """An invalid config file, key or value; the message says which and what was expected."""


@dataclass(frozen=True)
class DataConfig:
    """Which datasets, how they are split and balanced, and the image size."""

    train: tuple[str, ...] = ("sample",)
    """Training datasets by name (`sample` is the embedded CC0 set). Segmentation: one source,
    a builder with lesion masks (isic2016 | isic2017 | isic2018 | ph2, read through its
    `segmentation_512` config; or NAME/CONFIG) or `folder` (`images_dir` + `masks_dir`)."""
    test: str = "sample"
    """Test sets, comma-separated ("ph2,derm7pt"); NAME:SPLIT names a split (NAME:all: every
    split). A dataset not trained on is used whole; a training dataset gives its official test
    split, or a held-out part where it has none. Segmentation: a split of the source to
    evaluate at the end ("" = its test split if it has one, else the validation split)."""
    data_dir: str = ""
    """TFDS data dir ("" = the TFDS default; the embedded sample goes to ~/.cache/tfmelanoma)."""
    manual_dir: str = ""
    """Where the manual downloads are, for datasets not prepared yet."""
    label: str = "label"
    """label (binary melanoma) | harmonised_diagnosis (the nine ISIC 2019 classes)."""
    image_size: int = 64
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    split_seed: int = -1
    """Seed of the held-out validation (and test) parts drawn from training data (-1 = run.seed).
    Runs that differ only in run.seed but share split_seed share their validation split: what
    an ensemble of seeds needs, since `evaluate` fits temperature and rejection on it."""
    exclude: tuple[str, ...] = ()
    """Image ids never trained or validated on, nor any image matching them by the merge's
    rules (same ISIC id, pixels, pHash, lesion, patient): e.g. the web demo's gallery."""
    balance: str = "none"
    """none | oversample | inverse | effective (class weights as sample weights)."""
    cache: bool = True
    """Cache decoded, resized images in memory (after resize, before augmentation; tf.data)."""
    pipeline: str = "auto"
    """auto | tf | numpy | grain | tf_cached. tf (tf.data) and numpy decode, resize and
    augment every image every epoch on the CPU; grain and tf_cached decode each image once into
    a memory-mapped cache (`cache_dir`, `cache_size`) and augment inside the compiled training
    step, serving the same batches for a seed (grain on any backend, tf_cached through tf.data
    on TensorFlow). auto: beside a GPU or TPU, tf_cached on TensorFlow and grain elsewhere (when
    installed); on a CPU, tf on TensorFlow and numpy elsewhere. All but tf read
    `tfds.data_source` (datasets prepared as ArrayRecord)."""
    workers: int = 0
    """NumPy pipeline: threads preparing batches (0 = min(8, CPU count)); grain: threads
    decoding while the cache is built."""
    grain_workers: int = 0
    """grain: worker processes gathering training batches (0 = none: one in-process read-ahead
    thread, which keeps up: gathers are memory copies; processes add IPC, benchmarks/loader.py)."""
    cache_size: int = 0
    """grain, tf_cached: side of the decoded training images stored in the cache (random crops take their
    pixels from it); 0 = image_size x 8/7 (rounded up to a multiple of 8) when crop or zoom
    augmentation is on, else image_size. Validation is stored at image_size."""
    cache_dir: str = ""
    """grain: where decoded caches are kept ("" = <TFDS data dir>/tfmelanoma_decoded); one
    folder per (split fingerprint, size), built once, rebuilt when stale."""
    images_dir: str = ""
    """Segmentation, data.train=folder: the folder of images."""
    masks_dir: str = ""
    """Segmentation, data.train=folder: the folder of masks (`{id}_segmentation.png` or
    `{id}.png`)."""
    val_split: str = "validation"
    """Segmentation: the source's split used for validation; "" or a split the source lacks
    (a folder has none): a seeded `val_fraction` of the training split is held out instead."""
    limit: int = 0
    """Segmentation: train on the first N training examples only (0 = all)."""
    val_limit: int = 0
    """Segmentation: validate on the first N validation examples only (0 = all)."""


@dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly augmentation; every op has its own strength, 0 disables it."""

    enabled: bool = True
    crop_scale: float = 0.8
    """Random resized crop: smallest kept fraction of the area (1 = no crop)."""
    zoom: float = 0.0
    """Extra random zoom in, as a fraction of the side."""
    rotation: float = 0.25
    """Random rotation in turns (0.25 = up to ±90 degrees)."""
    hflip: bool = True
    vflip: bool = True
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02
    cutout: float = 0.0
    """Side of a random square erased, as a fraction of the image side."""
    mixup: float = 0.0
    """Mixup (Zhang et al. 2018): each training image blended with another of its batch, and
    their targets (and sample weights) with the same weight, drawn from Beta(mixup, mixup);
    0 = off, 0.2-0.4 usual for fine-tuning. The tf pipeline only."""
    cutmix: float = 0.0
    """CutMix (Yun et al. 2019): a box of another image of the batch pasted in, targets mixed by
    its area, which is drawn from Beta(cutmix, cutmix); 0 = off, 1.0 usual. With mixup too, each
    batch takes one of the two. The tf pipeline only."""

    @property
    def mixes_batches(self) -> bool:
        """Whether training batches are mixed (mixup or CutMix on, augmentation enabled)."""
        return self.enabled and (self.mixup > 0 or self.cutmix > 0)


@dataclass(frozen=True)
class ModelConfig:
    """A registry model and the keyword arguments of its factory."""

    name: str = "meshnet"
    num_classes: int = 2
    weights: str = ""
    """"" = random init, "imagenet", or a weights file path."""
    options: dict = field(default_factory=dict)
    """Extra factory keyword arguments (e.g. dropout, freeze_base; segmentation: colour_space,
    encoder, base_filters, depth, bn_momentum, decoder_filters; multitask (mmtl): backbone,
    age (bins | regression), age_edges, age_hidden, age_dropout)."""
    loss: str = "auto"
    """auto (classification: cross-entropy; segmentation: dice) | crossentropy | dice |
    dice_bce | bce (the last three: segmentation)."""
    teacher: str = ""
    """Knowledge distillation (classification): a trained teacher, as a run folder (its
    best.keras) or a .keras file, whose softened outputs on each augmented training batch the
    model also learns from (`training/distill.py`); several, separated by commas, teach as one
    ensemble (the mean of their probabilities); "" = none."""
    distill_alpha: float = 0.5
    """With a teacher: weight of the label loss; 1 - distill_alpha weighs the teacher's."""
    distill_temperature: float = 2.0
    """With a teacher: the softmax temperature T of both models' outputs (> 0)."""
    age_loss_weight: float = 0.5
    """run.task=multitask: weight of the age head's loss beside the diagnosis head's (1). The
    age losses differ in scale: bins is a cross-entropy like the diagnosis's (0.5, the paper's);
    regression a Huber loss in years (10-year delta, tens at first): ~0.01 keeps it comparable."""


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and learning-rate schedule."""

    name: str = "adam"
    """adam | adamw | sgd."""
    learning_rate: float = 1e-3
    momentum: float = 0.9
    beta_1: float = 0.9
    beta_2: float = 0.999
    weight_decay: float = 0.0
    schedule: str = "constant"
    """constant | step (×step_factor every step_epochs) | cosine | one_cycle | warmup_cosine
    (linear warm-up over warmup_epochs, then cosine decay to 0)."""
    step_epochs: int = 7
    step_factor: float = 0.1
    label_smoothing: float = 0.0
    warmup_epochs: int = 1
    """warmup_cosine: epochs of linear warm-up. Also the linear ramp of each backbone group's
    rate once it starts training (fine-tuning a pretrained backbone; 0 = none)."""
    head_warmup_epochs: int = 1
    """Pretrained backbone (model.weights set) with trainable layers: epochs in which only the
    new head trains (the backbone's learning rate and weight decay are 0). From random init
    every variable trains from the start."""
    backbone_lr_scale: float = 0.1
    """Pretrained backbone: its learning rate as a fraction of the head's (discriminative rates;
    1 = one rate for all). The unfrozen layers are set by model.options.trainable_from; its
    BatchNorm layers stay in inference mode (model.options.train_batchnorm: auto)."""
    unfreeze_stages: int = 1
    """Pretrained backbone: its trainable layers cut into this many groups of equal length,
    unfrozen top group first, after the head warm-up."""
    unfreeze_every: int = 1
    """Pretrained backbone: epochs between the starts of two groups (unfreeze_stages > 1)."""
    ema_momentum: float = 0.0
    """Exponential moving average of the trainable weights (Polyak averaging, Keras's
    `use_ema`), e.g. 0.99; 0 = off. Refused where BatchNorm trains (docs/training.md). Validation, the best checkpoint and the final model use
    the average; training steps update the raw weights."""


@dataclass(frozen=True)
class RunConfig:
    """Epochs, batch, seed, checkpointing and devices."""

    epochs: int = 12
    batch_size: int = 32
    seed: int = 0
    out_dir: str = "runs"
    name: str = ""
    """Run folder name ("" = model name + timestamp)."""
    task: str = "classification"
    """classification | segmentation (lesion masks) | multitask (diagnosis + age, model mmtl)."""
    monitor: str = "auto"
    """Validation metric that picks the best checkpoint: auto (the task's own: val_auc for
    classification, val_dice for segmentation, val_diagnosis_auc for multitask), or e.g.
    val_loss, val_accuracy, val_jaccard, val_age_mae_years."""
    early_stopping: int = 0
    """Stop after this many epochs without improvement (0 = off)."""
    mixed_precision: bool = False
    """bfloat16 compute (mixed_bfloat16 policy)."""
    jit_compile: bool = False
    """XLA-compile the TensorFlow train step (JAX always compiles; torch never)."""
    deterministic: bool = True
    distribute: str = "none"
    """none | mirrored (all local devices: tf.distribute.MirroredStrategy on TensorFlow,
    keras.distribution.DataParallel on JAX) | multiworker (several processes / hosts, JAX only:
    jax.distributed.initialize, then DataParallel over every process's devices; see
    coordinator. Keras 3's fit fails under TensorFlow's MultiWorkerMirroredStrategy)."""
    coordinator: str = ""
    """multiworker on JAX: host:port of process 0 ("" = KERAS_DISTRIBUTION_JOB_ADDRESSES, else
    JAX_COORDINATOR_ADDRESS or the cluster's, e.g. SLURM)."""
    num_processes: int = 0
    """multiworker on JAX: processes in the run (0 = KERAS_DISTRIBUTION_NUM_PROCESSES or the
    cluster's)."""
    process_id: int = -1
    """multiworker on JAX: this process's number; 0 writes the run folder (-1 =
    KERAS_DISTRIBUTION_PROCESS_ID or the cluster's)."""
    compile_cache: str = "auto"
    """JAX's persistent compilation cache folder: a second run (or --resume) of the same model
    reads the compiled step instead of compiling it again. auto = `jax/` under
    $TFMELANOMA_CACHE_DIR, else $XDG_CACHE_HOME/tfmelanoma, else ~/.cache/tfmelanoma; "" = off."""
    steps_per_epoch: int = 0
    """0 = one pass over the training split."""
    evaluate: bool = True


@dataclass(frozen=True)
class EvaluationConfig:
    """The evaluation report at the end of a run."""

    target_sensitivity: float = 0.9
    """Operating point: the P(melanoma) cut-off chosen on validation to reach this sensitivity,
    reported on test beside the 0.5 cut-off (binary label only)."""


@dataclass(frozen=True)
class Config:
    """The whole training config."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    eval: EvaluationConfig = field(default_factory=EvaluationConfig)

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    @property
    def split_seed(self) -> int:
        """The seed of the held-out splits: `data.split_seed`, or `run.seed` when it is -1."""
        return self.run.seed if self.data.split_seed < 0 else self.data.split_seed


CHOICES = {
    "data.balance": ("none", "oversample", "inverse", "effective"),
    "data.label": ("label", "harmonised_diagnosis"),
    "data.pipeline": ("auto", "tf", "numpy", "grain", "tf_cached"),
    "model.loss": ("auto", "crossentropy", "dice", "dice_bce", "bce"),
    "optimizer.name": ("adam", "adamw", "sgd"),
    "optimizer.schedule": ("constant", "step", "cosine", "one_cycle", "warmup_cosine"),
    "run.distribute": ("none", "mirrored", "multiworker"),
    "run.task": ("classification", "segmentation", "multitask"),
}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def presets() -> list[str]:
    """Names of the YAML presets shipped in `tfmelanoma/configs/`."""
    folder = resources.files("tfmelanoma").joinpath("configs")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def _keys(cls: type, prefix: str = "") -> dict[str, Any]:
    """Flattened `section.key -> type` for a dataclass tree."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(_keys(tp, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = tp
    return out


def flat_defaults() -> dict[str, Any]:
    """`section.key -> default value` of every config key (for `--help`)."""
    return flat(Config())


def flat(config: Config) -> dict[str, Any]:
    """`section.key -> value` of every key of `config`."""
    return _flatten(config.to_dict())


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict) and f"{prefix}{k}" != "model.options":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Checks and converts one value to the annotated type."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{key}: expected a list of names, got {value!r}")
        return tuple(i.strip() for i in items if i.strip())
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{key}: unsupported annotation {tp}")
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" as a string
            value = tp(value)
        except ValueError:
            raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}") from None
    if tp is str and value is None:
        return ""
    if not isinstance(value, tp) or isinstance(value, bool) and tp is not bool:
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(CHOICES[key])}")
    return value


def _unknown_key(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(_keys(Config)), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{where}: unknown config key {key!r}{hint}")


# Path keys: `~` and `$VARS` are expanded (a shell leaves `--set data.manual_dir=~/x` as is).
PATH_KEYS = (
    "data.data_dir",
    "data.manual_dir",
    "data.images_dir",
    "data.masks_dir",
    "run.out_dir",
)


def _apply(config: Config, flat: dict[str, Any], where: str) -> Config:
    types_ = _keys(Config)
    sections: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        if key not in types_:
            raise _unknown_key(key, where)
        section, name = key.split(".", 1)
        value = _coerce(key, value, types_[key])
        if key in PATH_KEYS and value:
            from tfmelanoma.fsio import expand

            value = str(expand(value))
        sections.setdefault(section, {})[name] = value
    return dataclasses.replace(
        config,
        **{s: dataclasses.replace(getattr(config, s), **kv) for s, kv in sections.items()},
    )


def load_config(
    preset_or_path: str | None = "default", overrides: list[str] | None = None
) -> Config:
    """Builds a config from a preset name or YAML path plus `key=value` overrides.

    Args:
        preset_or_path: a name from `presets()` or a path to a YAML file with sections
            `data`, `augment`, `model`, `optimizer`, `run`; None: no preset, the `Config`
            dataclass defaults (MeshNet 64 px on the sample: what benchmarks build on, so that
            a change of the `default` preset does not change what they measure).
        overrides: `section.key=value` strings; values are parsed as YAML (`a,b` for lists).

    Raises:
        ConfigError: unreadable file, unknown key (with the closest valid one), bad value.
    """
    if preset_or_path is None:
        return _with_overrides(Config(), overrides)
    path = Path(preset_or_path)
    if not path.suffix:
        if preset_or_path not in presets():
            raise ConfigError(
                f"unknown preset {preset_or_path!r}; presets: {', '.join(presets())} "
                "(or give a path to a .yaml file)"
            )
        text = (
            resources.files("tfmelanoma").joinpath("configs", f"{preset_or_path}.yaml").read_text()
        )
        where = f"preset {preset_or_path!r}"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
        where = str(path)
    try:
        tree = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({e})") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{where}: expected a mapping of sections, got {type(tree).__name__}")
    flat = {}
    for section, values in tree.items():
        if not isinstance(values, dict):
            raise _unknown_key(str(section), where)
        for k, v in values.items():
            flat[f"{section}.{k}"] = v
    return _with_overrides(_apply(Config(), flat, where), overrides)


def _with_overrides(config: Config, overrides: list[str] | None) -> Config:
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        config = _apply(config, {key.strip(): value}, f"--set {item}")
    _check_ranges(config)
    return config


def resume_config(run_dir: Path, given: Config | None = None, overrides: list[str] = ()) -> Config:
    """The config a resumed run continues with: its own `config.yaml`, unchanged.

    Args:
        run_dir: the run folder.
        given: a config the user gave besides (`--config`), which must agree with the run's.
        overrides: `--set key=value` items, which must agree with the run's config too.

    Raises:
        RunFolderError: the folder holds no run.
        ConfigError: `given` or `overrides` would change the run's hyperparameters (each key
            listed with both values).
    """
    saved_path = Path(run_dir) / "config.yaml"
    if not saved_path.is_file():
        from tfmelanoma.errors import RunFolderError

        raise RunFolderError(
            f"{run_dir}: no run to resume (no config.yaml there); drop --resume to start a new run"
        )
    saved = load_config(str(saved_path))
    wanted = load_config(str(saved_path), list(overrides))
    conflicts = _differences(saved, wanted)
    if given is not None:
        conflicts += [c for c in _differences(saved, given) if c not in conflicts]
    if conflicts:
        raise ConfigError(
            f"--resume continues {run_dir} with its own config.yaml; these would change it:\n"
            + "\n".join(conflicts)
            + "\nDrop them to resume, or start a new run (another --run-dir) with them."
        )
    runtime = {}
    for key in RUNTIME_KEYS:  # --set, else --config, else the run's own
        name = key.split(".")[1]
        value = getattr(wanted.run, name)
        if value == getattr(saved.run, name) and given is not None:
            value = getattr(given.run, name)
        runtime[name] = value
    return dataclasses.replace(saved, run=dataclasses.replace(saved.run, **runtime))


RUNTIME_KEYS = ("run.coordinator", "run.num_processes", "run.process_id", "run.compile_cache")
"""Where and how a run executes, not what it trains: --resume takes them as given."""


def _differences(a: Config, b: Config) -> list[str]:
    fa, fb = flat(a), flat(b)
    return [
        f"{k}: the run has {fa[k]!r}, given {fb[k]!r}"
        for k in fa
        if fa[k] != fb[k] and k not in RUNTIME_KEYS
    ]


def _check_ranges(config: Config) -> None:
    """Values of the right type but outside their range (a negative or NaN learning rate...)."""
    opt = config.optimizer
    if not (math.isfinite(opt.learning_rate) and opt.learning_rate > 0):
        raise ConfigError(
            f"optimizer.learning_rate={opt.learning_rate}: expected a finite number > 0"
        )
    for key, value, low, high in (
        ("optimizer.momentum", opt.momentum, 0.0, 1.0),
        ("optimizer.beta_1", opt.beta_1, 0.0, 1.0),
        ("optimizer.beta_2", opt.beta_2, 0.0, 1.0),
        ("optimizer.label_smoothing", opt.label_smoothing, 0.0, 1.0),
        ("optimizer.ema_momentum", opt.ema_momentum, 0.0, 1.0),
    ):
        if not (math.isfinite(value) and low <= value < high):
            raise ConfigError(f"{key}={value}: expected a number in [{low:g}, {high:g})")
    for key in ("mixup", "cutmix"):
        value = getattr(config.augment, key)
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"augment.{key}={value}: expected a number >= 0")
    if config.augment.mixes_batches and config.run.task != "classification":
        raise ConfigError(
            f"augment.mixup={config.augment.mixup}, augment.cutmix={config.augment.cutmix}: "
            f"batch mixing is for run.task=classification, not {config.run.task!r}; set both to 0"
        )
    alpha, temperature = config.model.distill_alpha, config.model.distill_temperature
    if not (math.isfinite(alpha) and 0 <= alpha <= 1):
        raise ConfigError(f"model.distill_alpha={alpha}: expected a number in [0, 1]")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"model.distill_temperature={temperature}: expected a number > 0")
    if not (math.isfinite(config.model.age_loss_weight) and config.model.age_loss_weight >= 0):
        raise ConfigError(
            f"model.age_loss_weight={config.model.age_loss_weight}: expected a number >= 0"
        )
    target = config.eval.target_sensitivity
    if not (math.isfinite(target) and 0 < target <= 1):
        raise ConfigError(f"eval.target_sensitivity={target}: expected a number in (0, 1]")
    if config.data.split_seed < -1:
        raise ConfigError(
            f"data.split_seed={config.data.split_seed}: expected a seed >= 0, or -1 (run.seed)"
        )
    if config.run.process_id < -1 or config.run.num_processes < 0:
        raise ConfigError(
            f"run.process_id={config.run.process_id}, run.num_processes="
            f"{config.run.num_processes}: expected process_id >= -1 and num_processes >= 0"
        )
    if not (math.isfinite(opt.step_factor) and 0 < opt.step_factor <= 1):
        raise ConfigError(f"optimizer.step_factor={opt.step_factor}: expected a number in (0, 1]")
    if not (math.isfinite(opt.weight_decay) and opt.weight_decay >= 0):
        raise ConfigError(f"optimizer.weight_decay={opt.weight_decay}: expected a number >= 0")
    if not (math.isfinite(opt.backbone_lr_scale) and opt.backbone_lr_scale >= 0):
        raise ConfigError(
            f"optimizer.backbone_lr_scale={opt.backbone_lr_scale}: expected a number >= 0"
        )
    for key in (
        "data.limit",
        "data.val_limit",
        "data.cache_size",
        "data.grain_workers",
        "optimizer.warmup_epochs",
        "optimizer.head_warmup_epochs",
    ):
        section, name = key.split(".")
        if getattr(getattr(config, section), name) < 0:
            raise ConfigError(f"{key}={getattr(getattr(config, section), name)}: expected >= 0")
    for key in (
        "data.image_size",
        "run.epochs",
        "run.batch_size",
        "optimizer.step_epochs",
        "optimizer.unfreeze_stages",
        "optimizer.unfreeze_every",
    ):
        section, name = key.split(".")
        if getattr(getattr(config, section), name) < 1:
            raise ConfigError(f"{key}={getattr(getattr(config, section), name)}: expected >= 1")
    if 0 < config.data.cache_size < config.data.image_size:
        raise ConfigError(
            f"data.cache_size={config.data.cache_size}: expected 0 (auto) or >= data.image_size "
            f"({config.data.image_size})"
        )


def save_config(config: Config, path: Path) -> None:
    """Writes the resolved config as YAML (readable back with `load_config(path)`)."""
    from tfmelanoma.fsio import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(config.to_dict(), sort_keys=False))
