"""Faults of `python -m tfmelanoma.train`: concurrent writers, interrupts, resume, divergence, disk.

Every case asserts the message (exit 2 or 130, the folder or key named, no traceback) and that
nothing was lost: the run folder is unchanged, or the resumed run ends with the uninterrupted
run's metrics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.conftest import REPO_ROOT, assert_clean_error, kill_when, snapshot

pytestmark = pytest.mark.slow

PROG = "python -m tfmelanoma.train"
SMOKE = ["--config", "smoke", "-q", "--set", "run.epochs=3"]
CRASH_SCRIPT = Path(__file__).with_name("crash_train.py")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """One prepared copy of the sample for the module; the CLI's own log level (as users get)."""
    env = dict(
        os.environ,
        TFDS_DATA_DIR=str(tmp_path_factory.mktemp("tfds")),
        PYTHONPATH=str(REPO_ROOT),
    )
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def _cmd(run_dir: Path, *extra: str, smoke: bool = True) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tfmelanoma.train",
        *(SMOKE if smoke else []),
        "--run-dir",
        str(run_dir),
        *extra,
    ]


def _train(env: dict, run_dir: Path, *extra: str, smoke: bool = True):
    return subprocess.run(
        _cmd(run_dir, *extra, smoke=smoke),
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=REPO_ROOT,
    )


def _state(run_dir: Path) -> dict:
    path = run_dir / "checkpoints" / "state.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _test_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())["test"]


def _same_metrics(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float) and isinstance(b[key], float):
            assert abs(a[key] - b[key]) <= 1e-6, (key, a[key], b[key])
        else:
            assert a[key] == b[key], key


@pytest.fixture(scope="module")
def reference_run(env, tmp_path_factory) -> Path:
    """The uninterrupted run's folder (tests may read it, never change it)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    out = _train(env, run_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "epoch-0003.keras",
        "state.json",
    ]
    assert _state(run_dir)["model_file"] == "epoch-0003.keras"
    return run_dir


@pytest.fixture(scope="module")
def reference(reference_run) -> dict:
    """The uninterrupted run's test metrics."""
    return _test_metrics(reference_run)


def test_second_writer_is_refused_and_the_first_run_is_untouched(env, reference, tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        _cmd(run_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 300
    while not (run_dir / ".lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the first run ended before the second could start"
    second = _train(env, run_dir, "--overwrite")
    assert_clean_error(second, PROG, str(run_dir), f"another process (pid {first.pid})")
    _, stderr = first.communicate(timeout=900)
    assert first.returncode == 0, stderr[-3000:]
    _same_metrics(_test_metrics(run_dir), reference)


def test_ctrl_c_says_how_to_resume_and_resume_uses_the_runs_own_config(env, reference, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        _cmd(run_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 600
    while _state(run_dir).get("epochs_done") != 1 and time.monotonic() < deadline:
        assert proc.poll() is None, "training ended before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    done = _state(run_dir)["epochs_done"]
    assert f"interrupted; the checkpoint after epoch {done} is in" in stderr
    resume = f"continue with: {PROG} --run-dir {run_dir} --resume"
    assert resume in stderr
    config_before = (run_dir / "config.yaml").read_bytes()

    # Exactly the printed command: no --config, no --set (the README's form).
    out = _train(env, run_dir, "--resume", smoke=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (run_dir / "config.yaml").read_bytes() == config_before
    _same_metrics(_test_metrics(run_dir), reference)


def test_resume_refuses_settings_that_differ_from_the_run(env, reference_run):
    run_dir = reference_run
    before = snapshot(run_dir)
    out = _train(env, run_dir, "--resume", "--set", "data.image_size=64", smoke=False)
    assert_clean_error(out, PROG, "data.image_size: the run has 32, given 64", "start a new run")
    out = _train(env, run_dir, "--resume", "--config", "default", smoke=False)
    assert_clean_error(out, PROG, "run.epochs: the run has 3, given 12")
    assert snapshot(run_dir) == before


def test_resume_needs_an_existing_run_and_a_failed_start_leaves_no_folder(env, tmp_path):
    missing = tmp_path / "missing"
    out = _train(env, missing, "--resume")
    assert_clean_error(out, PROG, f"{missing}: no run to resume", "drop --resume")
    assert not missing.exists()

    out = subprocess.run(
        [sys.executable, "-m", "tfmelanoma.train", "--resume"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert_clean_error(out, PROG, "--resume needs the run folder")
    assert not (tmp_path / "runs").exists()

    stub = tmp_path / "stub"
    out = _train(env, stub, "--set", "data.train=no_such_dataset")
    assert_clean_error(out, PROG, "unknown dataset 'no_such_dataset'")
    assert not stub.exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("optimizer.learning_rate=-1", "expected a finite number > 0"),
        ("optimizer.learning_rate=.nan", "expected a finite number > 0"),
        ("optimizer.learning_rate=0", "expected a finite number > 0"),
        ("optimizer.momentum=1.5", "expected a number in [0, 1)"),
        ("run.batch_size=0", "expected >= 1"),
    ],
)
def test_out_of_range_settings_are_refused_before_anything_runs(env, tmp_path, setting, message):
    out = _train(env, tmp_path / "run", "--set", setting)
    assert_clean_error(out, PROG, setting.split("=")[0], message)
    assert not (tmp_path / "run").exists()


def test_divergence_in_the_first_epoch_keeps_nothing_infinite(env, tmp_path):
    run_dir = tmp_path / "run"
    out = _train(env, run_dir, "--set", "optimizer.learning_rate=1e9")
    assert_clean_error(out, PROG, "training diverged in epoch 1", "optimizer.learning_rate")
    assert not run_dir.exists()  # no best.keras with infinite weights, no stub folder


def _crash(env: dict, run_dir: Path, mode: str) -> subprocess.CompletedProcess:
    """Runs the smoke training with a fault injected by crash_train.py (see there)."""
    return subprocess.run(
        [sys.executable, str(CRASH_SCRIPT), mode, *_cmd(run_dir)[3:]],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=REPO_ROOT,
    )


def test_a_kill_between_model_and_state_resumes_from_a_consistent_epoch(env, reference, tmp_path):
    run_dir = tmp_path / "run"
    out = _crash(env, run_dir, "kill-before-commit-2")
    assert out.returncode == 9, out.stderr[-3000:]
    # Epoch 2's model was written, its state was not: the committed checkpoint is epoch 1's.
    state = _state(run_dir)
    assert state["epochs_done"] == 1 and state["model_file"] == "epoch-0001.keras"
    assert (run_dir / "checkpoints" / "epoch-0002.keras").exists()

    out = _train(env, run_dir, "--resume", smoke=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "epoch-0003.keras",
        "state.json",
    ]
    _same_metrics(_test_metrics(run_dir), reference)


def test_divergence_after_a_good_epoch_keeps_the_good_checkpoint(env, tmp_path):
    import numpy as np

    run_dir = tmp_path / "run"
    out = _crash(env, run_dir, "nan-weights-in-epoch-2")
    assert_clean_error(
        out,
        PROG,
        "training diverged in epoch 2",
        "the last good checkpoint (epoch 1) and best.keras (epoch 1) are kept",
    )
    state = _state(run_dir)
    assert state["epochs_done"] == 1
    import keras

    for path in (run_dir / "best.keras", run_dir / "checkpoints" / state["model_file"]):
        model = keras.models.load_model(path)
        assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {out.stderr.strip()}")


def test_disk_full_then_read_only_then_resume(env, reference, tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "3m")  # the smoke MeshNet checkpoint is ~1.3 MB: epoch 1 fits, not 2
    try:
        run_dir = disk / "run"
        out = _train(env, run_dir)
        stderr = assert_clean_error(out, PROG, "No space left on device", str(run_dir))
        assert f"continue with: {PROG} --run-dir {run_dir} --resume" in stderr
        assert _state(run_dir).get("epochs_done", 0) >= 1, "epoch 1 should have been kept"
        kept = snapshot(run_dir / "checkpoints")

        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        out = _train(env, run_dir, "--resume", smoke=False)
        assert_clean_error(out, PROG, "Read-only file system")
        assert snapshot(run_dir / "checkpoints") == kept

        subprocess.run(["mount", "-o", "remount,rw,size=64m", str(disk)], check=True)
        out = _train(env, run_dir, "--resume", smoke=False)
        assert out.returncode == 0, out.stderr[-3000:]
        _same_metrics(_test_metrics(run_dir), reference)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_kill_during_a_save_leaves_no_temporary_files_after_resume(env, reference, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        _cmd(run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    # The moment a temporary checkpoint file exists, the process is inside a save.
    kill_when(proc, lambda: any((run_dir / "checkpoints").glob(".epoch-*.tmp*")))
    out = _train(env, run_dir, "--resume", smoke=False)
    assert out.returncode == 0, out.stderr[-3000:]
    leftovers = [p.name for p in run_dir.rglob(".*.tmp*")]
    assert leftovers == []
    _same_metrics(_test_metrics(run_dir), reference)
