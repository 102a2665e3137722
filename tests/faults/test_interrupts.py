"""Interrupts of the commands that write (train and prepare have theirs in their own files):
Ctrl-C or kill -9 in the middle of `segment train`, `grid` and `export.tfjs` loses nothing that
was there, leaves no lock that blocks the next run, and the same command then finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.faults.conftest import REPO_ROOT, cli_env, kill_when, run_cli, snapshot

pytestmark = pytest.mark.slow


def _start(module: str, *args, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        start_new_session=True,  # a process group, as a terminal's Ctrl-C reaches
    )


def _wait_for(proc: subprocess.Popen, condition, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"ended (rc {proc.returncode}) before the interrupt point"
        assert time.monotonic() < deadline, "the interrupt point was never reached"
        time.sleep(0.05)


def _mtime(path: Path) -> int | None:
    """A file's mtime in ns, or None while it does not exist (it may vanish between calls)."""
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _seg_args(data: Path, out: Path, epochs: int) -> list:
    return [
        "train", "--model", "unet", "--data", "folder", "--images", data / "images",
        "--masks", data / "masks", "--image-size", "16", "--base-filters", "2", "--depth", "2",
        "--batch-size", "2", "--epochs", epochs, "--val-split", "", "--out", out,
    ]  # fmt: skip


def test_segment_train_interrupted_keeps_the_old_model_and_runs_again(seg_data, tmp_path):
    env = cli_env(tmp_path)
    out = tmp_path / "run"
    first = run_cli("tfmelanoma.segment", *_seg_args(seg_data, out, 1), env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(out)

    # Ctrl-C while the replacement trains: a message, exit 130, the old model whole. The signal
    # goes once the new run has committed an epoch (a new state.json), not at a guessed delay:
    # under load, start-up (imports) can outlast any fixed sleep.
    state = out / "checkpoints" / "state.json"
    old_state = state.stat().st_mtime_ns
    proc = _start("tfmelanoma.segment", *_seg_args(seg_data, out, 500), "--overwrite", env=env)
    _wait_for(proc, lambda: _mtime(state) not in (None, old_state))
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert snapshot(out)["model.keras"] == before["model.keras"]

    # kill -9: no cleanup code runs at all; the lock dies with the process.
    proc = _start("tfmelanoma.segment", *_seg_args(seg_data, out, 500), "--overwrite", env=env)
    kill_when(proc, lambda: (out / ".lock").read_text().strip() == str(proc.pid))
    assert snapshot(out)["model.keras"] == before["model.keras"]

    again = run_cli("tfmelanoma.segment", *_seg_args(seg_data, out, 1), "--overwrite", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]


def test_grid_ctrl_c_then_the_same_command_finishes(tmp_path):
    env = cli_env(tmp_path)
    out = tmp_path / "grid"
    args = [
        "--datasets", "sample:sample", "--models", "meshnet", "--config", "smoke",
        "--set", "run.epochs=3", "--out", out,
    ]  # fmt: skip
    state = out / "runs" / "sample__sample__meshnet" / "checkpoints" / "state.json"
    proc = _start("tfmelanoma.grid", *args, env=env)
    _wait_for(proc, state.exists)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches grid and its cell
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "continue with the same command" in stderr

    again = run_cli("tfmelanoma.grid", *args, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    table = pd.read_csv(out / "results.csv")
    assert list(table["status"]) == ["ok"]
    log = (out / "logs" / "sample__sample__meshnet.log").read_text()
    # The interrupted cell went on from its checkpoint (epoch 1 done), not from the start.
    assert "Epoch 1/3" not in log and "Epoch 2/3" in log, log[-2000:]


def test_export_interrupted_or_killed_mid_conversion_keeps_the_old_export(tmp_path):
    from tfmelanoma.models import create_model

    model = tmp_path / "m.keras"
    create_model("meshnet", input_shape=(32, 32, 3), width=4, dilations=(1, 2)).save(model)
    env = cli_env(tmp_path)
    out = tmp_path / "web" / "meshnet"
    args = ["--model", model, "--out", out, "--skip-parity"]
    first = run_cli("export.tfjs", *args, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(out)
    converting = lambda: any(out.parent.glob(f".{out.name}.export-*"))  # noqa: E731

    # Ctrl-C mid-conversion: one line, exit 130, the old export whole, no temporary folder left.
    proc = _start("export.tfjs", *args, "--force", env=env)
    _wait_for(proc, converting)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr and "is as it was" in stderr and "Traceback" not in stderr
    assert snapshot(out) == before and not converting()

    proc = _start("export.tfjs", *args, "--force", env=env)
    kill_when(proc, converting)
    assert snapshot(out) == before

    again = run_cli("export.tfjs", *args, "--force", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.name for p in out.parent.iterdir() if p.name != ".lock") == [out.name]
