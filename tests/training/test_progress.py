"""Progress for logs: lines inside an epoch with images/s and ETA; history.csv from epoch 1."""

from __future__ import annotations

import io

import keras
import numpy as np

from tfmelanoma.training.progress import HistoryCSV, StepProgress


def _fit(callbacks, epochs=2, initial_epoch=0):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((40, 4), "float32"), np.zeros((40, 1), "float32")
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        callbacks=callbacks,
    )


def test_step_progress_writes_lines_with_rate_and_eta():
    stream = io.StringIO()
    _fit([StepProgress(steps=10, batch_size=4, epochs=2, every=0.0, stream=stream)])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 20  # every step of both epochs, since every=0
    assert lines[0].startswith("epoch 1/2 step 1/10 (10%), ")
    assert lines[-1].startswith("epoch 2/2 step 10/10 (100%), ")
    assert all(" img/s, epoch ETA " in line for line in lines)


def test_step_progress_is_silent_between_its_intervals():
    stream = io.StringIO()
    _fit([StepProgress(steps=10, batch_size=4, epochs=2, every=3600.0, stream=stream)])
    assert stream.getvalue() == ""


def test_history_csv_counts_epochs_from_one(tmp_path):
    _fit([HistoryCSV(str(tmp_path / "history.csv"))], epochs=3)
    rows = (tmp_path / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,")
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]


def test_history_csv_on_resume_drops_rows_the_checkpoint_never_committed(tmp_path):
    """A run killed after writing epoch 3's row but before committing epoch 3 resumes after
    epoch 2: the stale row 3 goes, and the resumed epochs 3 and 4 follow 1 and 2 once each."""
    path = tmp_path / "history.csv"
    _fit([HistoryCSV(str(path))], epochs=3)
    _fit([HistoryCSV(str(path), resume_after=2)], epochs=4, initial_epoch=2)
    rows = path.read_text().splitlines()
    assert rows[0].startswith("epoch,") and rows.count(rows[0]) == 1
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]
