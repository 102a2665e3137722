"""What a run writes while it trains: history.csv (epochs counted from 1) and progress lines.

Keras's progress bar is for a terminal; in a log file (`nohup ... > log`, the grid's cell logs) it
prints one line per epoch at best, so a real-data epoch could print nothing for minutes.
`StepProgress` writes one plain line every `every` seconds instead: step, images/s and the
epoch's ETA.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import keras

from tfmelanoma.fsio import atomic_write_text


class HistoryCSV(keras.callbacks.CSVLogger):
    """Keras's CSVLogger with epochs counted from 1, as the printed best epoch and the plot.

    The runner places it before the checkpoint callback, so an epoch's row is written (and
    flushed) before `state.json` commits that epoch: a run killed between the two resumes with
    its row already there. Rows of epochs the checkpoint never committed are dropped on resume.

    Args:
        filename: history.csv.
        resume_after: on resume, the epochs the checkpoint holds; later rows are removed first.
            None starts a new file.
    """

    def __init__(self, filename: str, resume_after: int | None = None):
        super().__init__(filename, append=resume_after is not None)
        self.resume_after = resume_after

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.resume_after is not None:
            _trim_history(Path(self.filename), self.resume_after)
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch + 1, logs)


def _trim_history(path: Path, epochs: int) -> None:
    """Keeps the header and the rows of epochs 1..`epochs` of a history.csv (atomically)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [
        line
        for line in lines[1:]
        if line.split(",", 1)[0].strip().isdigit() and int(line.split(",", 1)[0]) <= epochs
    ]
    if kept != lines:
        atomic_write_text(path, "".join(kept))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class StepProgress(keras.callbacks.Callback):
    """One line every `every` seconds inside an epoch, for logs (no terminal, no bar).

    Args:
        steps: steps per epoch.
        batch_size: images per step (for images/s).
        epochs: the run's epochs (for "epoch 3/12").
        every: seconds between lines.
        stream: where the lines go (stdout, where Keras prints its epoch lines).
    """

    def __init__(self, steps: int, batch_size: int, epochs: int, every: float = 30.0, stream=None):
        super().__init__()
        self.steps, self.batch_size, self.epochs, self.every = steps, batch_size, epochs, every
        self.stream = stream or sys.stdout
        self._epoch = 0
        self._start = self._last = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1
        self._start = self._last = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        done = batch + 1
        elapsed = now - self._start
        rate = done * self.batch_size / elapsed if elapsed > 0 else 0.0
        eta = elapsed / done * (self.steps - done)
        print(
            f"epoch {self._epoch}/{self.epochs} step {done}/{self.steps} "
            f"({done / self.steps:.0%}), {rate:.1f} img/s, epoch ETA {_duration(eta)}",
            file=self.stream,
            flush=True,
        )
