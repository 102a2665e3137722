"""Resumable checkpoints: the last epoch's full model (weights + optimizer) and run state.

After every epoch the model is saved as `epoch-NNNN.keras` (atomically: unique temporary name,
then `os.replace`), then `state.json`, which names that file, is replaced atomically: replacing
`state.json` is the one commit point. A process killed at any moment leaves a state that names a
complete model of the same epoch (the previous epoch's until the commit), never a model of one
epoch with the state of another; older epoch files are removed only after the commit. A rerun
with `--resume` loads them and continues at the next epoch; the data pipeline skips what was
already seen, so the result matches an uninterrupted run (up to backend nondeterminism).

Before anything is saved, the epoch's losses and every weight must be finite: a diverged epoch
raises `DivergedError` and leaves `best.keras` and the last checkpoint as they were.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from tfmelanoma.data import device_augment
from tfmelanoma.errors import DivergedError, RunFolderError
from tfmelanoma.fsio import atomic_save_model, atomic_write_text

LEGACY_MODEL = "last.keras"  # the checkpoint's file name before the model was named per epoch


@dataclass
class RunState:
    """What a resumed run needs besides the model.

    Attributes:
        epochs_done: completed epochs.
        best: best value of the monitored metric so far (None before the first epoch).
        best_epoch: 1-based epoch of `best`.
        wait: epochs since the last improvement (early stopping).
        seed_states: the model's random-generator states (dropout masks and the like), in
            `seed_state_variables` order. `.keras` files do not keep them, and a resumed run
            needs them to draw the same random numbers as an uninterrupted one.
    """

    epochs_done: int = 0
    best: float | None = None
    best_epoch: int = 0
    wait: int = 0
    seed_states: list | None = None
    model_file: str = LEGACY_MODEL
    """The checkpoint's model, in the checkpoint folder (`epoch-NNNN.keras`)."""


def seed_state_variables(model: keras.Model) -> list:
    """The model's `keras.random.SeedGenerator` state variables, in a stable order."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def restore_seed_states(model: keras.Model, state: RunState) -> None:
    """Puts the saved random-generator states back into a model loaded from the checkpoint."""
    if state.seed_states is None:
        return
    variables = seed_state_variables(model)
    if len(variables) != len(state.seed_states):
        raise ValueError(
            f"the checkpoint's run state has {len(state.seed_states)} random-generator states but "
            f"the model has {len(variables)}; was {state.model_file} replaced?"
        )
    for variable, value in zip(variables, state.seed_states, strict=True):
        variable.assign(np.asarray(value, dtype=variable.dtype))


@contextlib.contextmanager
def averaged_weights(model: keras.Model):
    """Inside: the model holds its optimizer's moving average of the weights
    (`optimizer.ema_momentum`); the raw weights are put back on exit. Nothing without EMA.

    With the public `finalize_variable_values` (what `fit` applies at its end), so the optimizer
    and its averages are left untouched: the epoch checkpoint, saved outside, keeps raw
    weights and averages apart, and a resumed run continues exactly.
    """
    optimizer = getattr(model, "optimizer", None)
    if not getattr(optimizer, "use_ema", False) or not optimizer.built:
        yield
        return
    variables = model.trainable_weights  # the optimizer's order, as fit passes them
    raw = [keras.ops.convert_to_numpy(v.value) for v in variables]
    optimizer.finalize_variable_values(variables)
    try:
        yield
    finally:
        for variable, value in zip(variables, raw, strict=True):
            variable.assign(value)


def load_state(folder: Path) -> RunState | None:
    """The committed state, or None if the run has no checkpoint yet.

    Raises:
        RunFolderError: `state.json` is unreadable or names a model file that is missing.
    """
    path = Path(folder) / "state.json"
    if not path.exists():
        return None
    try:
        state = RunState(**json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as e:
        raise RunFolderError(
            f"{path}: unreadable run state ({e}); start again with --overwrite"
        ) from None
    if not (Path(folder) / state.model_file).is_file():
        raise RunFolderError(
            f"{path} names {state.model_file}, which is missing from {folder}; "
            "start again with --overwrite"
        )
    return state


def model_path(folder: Path) -> Path | None:
    """The checkpoint's model file (`epoch-NNNN.keras`), or None without a checkpoint."""
    state = load_state(folder)
    return None if state is None else Path(folder) / state.model_file


def _non_finite_weights(model: keras.Model) -> list[str]:
    """Paths of the model's variables that hold NaN or infinity (optimizer state excluded)."""
    return [
        v.path
        for v in model.weights
        if "float" in str(v.dtype) and not np.isfinite(keras.ops.convert_to_numpy(v.value)).all()
    ]


def remove_leftovers(folder: Path, keep: str = "") -> None:
    """Removes what a killed writer left in `folder`: temporary files and uncommitted epochs.

    Call only while holding the run folder's lock (no other writer can own them then).
    """
    for path in Path(folder).glob(".*.tmp*"):
        path.unlink(missing_ok=True)
    for path in Path(folder).glob("epoch-*.keras"):
        if path.name != keep:
            path.unlink(missing_ok=True)


class ResumableCheckpoint(keras.callbacks.Callback):
    """Keeps `epoch-NNNN.keras` + `state.json` (every epoch) and `best.keras` (on improvement).

    Also does early stopping, so best value and patience survive a restart (Keras's own
    ModelCheckpoint/EarlyStopping reset that state when training begins).

    Args:
        folder: checkpoint folder (created).
        best_path: where the best model is saved.
        monitor: logged metric to maximise (`*auc*`, `*accuracy*`) or minimise (`*loss*`,
            `*mae*`, `*error*`).
        patience: early-stopping patience in epochs; 0 disables it.
        state: state to continue from.
    """

    def __init__(
        self,
        folder: Path,
        best_path: Path,
        monitor: str,
        patience: int = 0,
        state: RunState | None = None,
    ):
        super().__init__()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.best_path = Path(best_path)
        self.monitor = monitor
        self.patience = patience
        self.state = state or RunState()
        self.maximise = self.maximises(monitor)
        remove_leftovers(self.folder, keep=self.state.model_file)

    @staticmethod
    def maximises(metric: str) -> bool:
        """Whether higher is better for `metric` (not a loss, an MAE or an error)."""
        return not any(word in metric for word in ("loss", "mae", "error"))

    def _improved(self, value: float) -> bool:
        if self.state.best is None:
            return True
        return value > self.state.best if self.maximise else value < self.state.best

    def _check_finite(self, epoch: int, logs: dict) -> None:
        """Raises DivergedError when a loss or a weight of this epoch is NaN or infinite."""
        bad = [k for k, v in logs.items() if "loss" in k and not math.isfinite(float(v))]
        weights = _non_finite_weights(self.model)
        if not bad and not weights:
            return
        what = ", ".join(f"{k}={float(logs[k])}" for k in bad) or (
            f"{len(weights)} weight(s) not finite, e.g. {weights[0]}"
        )
        kept = (
            f"the last good checkpoint (epoch {self.state.epochs_done}) and best.keras (epoch "
            f"{self.state.best_epoch}) are kept"
            if self.state.epochs_done
            else "no checkpoint was written"
        )
        raise DivergedError(
            f"training diverged in epoch {epoch + 1}: {what}; {kept}.\n"
            "Lower optimizer.learning_rate (or check the data for NaNs) and start again with "
            "--overwrite; --resume would diverge the same way."
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"run.monitor: metric {self.monitor!r} is not logged; logged: {sorted(logs)}"
            )
        self._check_finite(epoch, logs)  # before anything is saved
        value = float(logs[self.monitor])
        if self._improved(value):
            self.state.best, self.state.best_epoch, self.state.wait = value, epoch + 1, 0
            # The model alone: a training-time wrapper (augmentation in the step) stays out;
            # with weight averaging, its averaged weights (those validation just scored).
            with averaged_weights(self.model):
                atomic_save_model(device_augment.inner_model(self.model), self.best_path)
        else:
            self.state.wait += 1
        self.state.epochs_done = epoch + 1
        self.state.seed_states = [
            np.asarray(keras.ops.convert_to_numpy(v.value)).tolist()
            for v in seed_state_variables(self.model)
        ]
        previous = self.state.model_file
        self.state.model_file = f"epoch-{epoch + 1:04d}.keras"
        atomic_save_model(self.model, self.folder / self.state.model_file)
        # The commit: from here on a resume starts from this epoch.
        atomic_write_text(self.folder / "state.json", json.dumps(asdict(self.state), indent=2))
        for old in {previous, LEGACY_MODEL} - {self.state.model_file}:
            (self.folder / old).unlink(missing_ok=True)
        if self.patience and self.state.wait >= self.patience:
            self.model.stop_training = True
