"""tfmelanoma: a TensorFlow/Keras toolkit for melanoma detection.

The public API, in three names (each imported on first use, so `import tfmelanoma` stays cheap:
it does not import TensorFlow or Keras, and the TFDS builders and the TF-free
`tfds.data_source` path can use `tfmelanoma.labels` without them)::

    import tfmelanoma

    config = tfmelanoma.load_config("smoke", ["run.epochs=3"])  # a preset + --set overrides
    result = tfmelanoma.train(config, "runs/my_run")  # the `python -m tfmelanoma.train` run
    print(result.metrics["test"]["auc_roc"])
    model = tfmelanoma.load_model("runs/my_run")  # a run folder or a .keras file

Errors are `tfmelanoma.errors.TfmelanomaError` (and `ValueError` / `OSError` for bad values and
files); each message names the file or key and what was expected.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"
__all__ = ["__version__", "load_config", "load_model", "train"]

# `tfmelanoma.train` is also the CLI module (`python -m tfmelanoma.train`); once that module is
# imported, Python binds the package attribute to it, so the module is made callable and calls
# `_train` (see the end of tfmelanoma/train.py): `tfmelanoma.train(config, run_dir)` works either
# way.


def load_config(preset_or_path: str = "default", overrides: list[str] | None = None):
    """A training config: a preset name or YAML file plus `section.key=value` overrides.

    See `tfmelanoma.config.load_config`; `python -m tfmelanoma.train --help` lists every key.
    """
    from tfmelanoma.config import load_config as load

    return load(preset_or_path, overrides)


def _train(config, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False):
    """Trains, checkpoints and evaluates `config` into `run_dir`, as `python -m tfmelanoma.train`.

    Args:
        config: a `tfmelanoma.config.Config` (e.g. from `load_config`).
        run_dir: the run folder (created; `~` expanded).
        resume: continue the run in `run_dir` (its config must equal `config`).
        overwrite: start again in a folder that already holds a run.

    Returns:
        `RunResult` with `run_dir` and `metrics` (the run's metrics.json).
    """
    from tfmelanoma.config import resume_config
    from tfmelanoma.fsio import expand
    from tfmelanoma.training import runner

    run_dir = expand(run_dir)
    if resume:
        resume_config(run_dir, config)  # refuses a config that differs from the run's
    return runner.train(config, run_dir, resume=resume, overwrite=overwrite, verbose=2)


def load_model(path: str | Path):
    """The Keras model of a run folder (its best.keras) or a `.keras` file, with the toolkit's
    layers registered and Keras's safe mode on.

    Raises:
        FileNotFoundError: no such file or no model in the folder.
        tfmelanoma.errors.ModelFileError: truncated, corrupt or not a Keras 3 model.
    """
    from tfmelanoma.fsio import expand
    from tfmelanoma.models import loading

    model_path, _ = loading.resolve_model_path(expand(path))
    return loading.load_model(model_path)


train = _train
