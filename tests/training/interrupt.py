"""Killing a training run at a known point, for the resume tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path


def kill_after_first_epoch(cmd: list[str], env: dict, run_dir: Path) -> None:
    """Starts `cmd`, SIGKILLs it (and its children) once epoch 1's checkpoint is written.

    Fails the test when the run ends before it could be interrupted, or when the checkpoint on
    disk afterwards is not epoch 1's.
    """
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    state = run_dir / "checkpoints" / "state.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text() or "{}").get("epochs_done") == 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads(state.read_text())["epochs_done"] == 1
