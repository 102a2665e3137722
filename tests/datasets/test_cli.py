"""`python -m tfmelanoma.datasets` (issue #20): train's dataset names, preparing, a fast --help."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import tensorflow_datasets as tfds

from tfmelanoma.datasets.__main__ import _parser, main
from tfmelanoma.datasets.rules import RULES

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    return proc, time.perf_counter() - started


def test_help_answers_at_once_and_shows_every_default_and_rule():
    proc, seconds = _run("-m", "tfmelanoma.datasets", "report", "--help")
    assert proc.returncode == 0, proc.stderr
    assert seconds < 5, seconds  # ~0.1 s here; 17 s when TensorFlow was imported first
    for rule in RULES:
        assert f"\n  {rule} " in proc.stdout, rule  # the values --rules accepts, explained
    assert "--manual-dir" in proc.stdout and "`sample`" in proc.stdout
    # Nothing heavy is imported to build the parser (the reason --help was slow).
    probe = (
        "import sys; from tfmelanoma.datasets.__main__ import _parser; _parser(); "
        "print([m for m in ('pandas', 'sklearn', 'tensorflow', 'tensorflow_datasets') "
        "if m in sys.modules])"
    )
    proc, _ = _run("-c", probe)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    # Every option of `report` says its default (or that it is required / a flag).
    report = _parser()._subparsers._group_actions[0].choices["report"]
    for action in report._actions:
        if action.dest != "help":
            assert "default" in action.help or "required" in action.help, action.dest


def test_report_takes_trains_names_expands_home_and_draws_no_bars(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    argv = ["report", "--train", "sample", "--test", "sample",
            "--data-dir", "~/tfds", "--out", "~/report"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "tfds" / "isic_archive" / "sample").is_dir()  # prepared on first use
    assert (tmp_path / "report" / "report.md").is_file()
    # The splits `python -m tfmelanoma.train` uses on the sample (docs/results.md: 356/89/112).
    assert "train          356 examples" in out and "test           112 examples" in out
    assert "Did you mean" not in out + err and len((out + err).splitlines()) < 60
    assert "\x1b[A" not in err and "examples/s" not in err  # no TFDS bars outside a terminal


def test_unprepared_dataset_suggests_a_command_that_works(tmp_path, capsys):
    argv = ["report", "--train", "kaggle_fanconic", "--data-dir", str(tmp_path), "--out", "x"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'kaggle_fanconic' is not prepared" in err
    assert f"--train kaggle_fanconic --test kaggle_fanconic --data-dir {tmp_path}" in err
    assert "--manual-dir <download folder>" in err and "data.manual_dir=" in err
    assert "tfds build" not in err and "None" not in err
    assert main(["report", "--train", "simpte", "--out", "x"]) == 2  # TFDS's, not ours
    assert "unknown dataset 'simpte'; datasets: sample, " in capsys.readouterr().err


def test_manual_dir_prepares_like_train_does(tiny_manual_dirs, tmp_path, capsys):
    manual = tiny_manual_dirs
    data_dir = tmp_path / "tfds"
    argv = ["report", "--test", "ds4_tiny/alpha:test", "--manual-dir", str(manual["alpha"]),
            "--data-dir", str(data_dir), "--out", str(tmp_path / "report")]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert tfds.builder("ds4_tiny/alpha", data_dir=str(data_dir)).is_prepared()
    assert "test             6 examples" in capsys.readouterr().out
