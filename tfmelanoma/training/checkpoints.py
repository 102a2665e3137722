"""Resumable checkpoints: the last epoch's full model (weights + optimizer) and run state.

After every epoch `last.keras` and `state.json` are replaced atomically (write to a temporary
file, then `os.replace`), so a process killed at any moment leaves the previous epoch's
checkpoint intact, never a half-written one. A rerun with `--resume` loads them and continues
at the next epoch; the data pipeline skips what was already seen, so the result matches an
uninterrupted run (up to backend nondeterminism).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np


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


def seed_state_variables(model: keras.Model) -> list:
    """The model's `keras.random.SeedGenerator` state variables, in a stable order."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def restore_seed_states(model: keras.Model, state: RunState) -> None:
    """Puts the saved random-generator states back into a model loaded from `last.keras`."""
    if state.seed_states is None:
        return
    variables = seed_state_variables(model)
    if len(variables) != len(state.seed_states):
        raise ValueError(
            f"the checkpoint's run state has {len(state.seed_states)} random-generator states but "
            f"the model has {len(variables)}; was last.keras replaced?"
        )
    for variable, value in zip(variables, state.seed_states, strict=True):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """Saves a `.keras` file without ever leaving a partial file at `path`."""
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def load_state(folder: Path) -> RunState | None:
    """The saved state, or None if the run has no checkpoint yet."""
    path = folder / "state.json"
    if not path.exists() or not (folder / "last.keras").exists():
        return None
    try:
        return RunState(**json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(
            f"{path}: unreadable run state ({e}); delete the run folder to restart"
        ) from None


class ResumableCheckpoint(keras.callbacks.Callback):
    """Keeps `last.keras` + `state.json` (every epoch) and `best.keras` (on improvement).

    Also does early stopping, so best value and patience survive a restart (Keras's own
    ModelCheckpoint/EarlyStopping reset that state when training begins).

    Args:
        folder: checkpoint folder (created).
        best_path: where the best model is saved.
        monitor: logged metric to maximise (`*auc*`, `*accuracy*`) or minimise (`*loss*`).
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
        self.maximise = "loss" not in monitor

    def _improved(self, value: float) -> bool:
        if self.state.best is None:
            return True
        return value > self.state.best if self.maximise else value < self.state.best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"run.monitor: metric {self.monitor!r} is not logged; logged: {sorted(logs)}"
            )
        value = float(logs[self.monitor])
        if self._improved(value):
            self.state.best, self.state.best_epoch, self.state.wait = value, epoch + 1, 0
            save_model_atomic(self.model, self.best_path)
        else:
            self.state.wait += 1
        self.state.epochs_done = epoch + 1
        self.state.seed_states = [
            np.asarray(keras.ops.convert_to_numpy(v.value)).tolist()
            for v in seed_state_variables(self.model)
        ]
        save_model_atomic(self.model, self.folder / "last.keras")
        _atomic_write_text(self.folder / "state.json", json.dumps(asdict(self.state), indent=2))
        if self.patience and self.state.wait >= self.patience:
            self.model.stop_training = True
