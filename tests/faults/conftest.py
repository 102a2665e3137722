"""Helpers for fault-injection tests: run a CLI, snapshot a folder, kill a process at a moment."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_env(tmp_path: Path, **extra: str) -> dict:
    """The environment for a CLI subprocess: its own TFDS data dir, CI's log level."""
    env = dict(os.environ, TFDS_DATA_DIR=str(tmp_path / "tfds"), PYTHONPATH=str(REPO_ROOT))
    env.update(extra)
    return env


def run_cli(module: str, *args: str, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m <module> <args>`, captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )


def assert_clean_error(out: subprocess.CompletedProcess, prog: str, *needles: str) -> str:
    """Exit 2, `prog: error:` on stderr, every needle in the message, no traceback."""
    assert out.returncode == 2, (out.returncode, out.stdout[-2000:], out.stderr[-3000:])
    assert f"{prog}: error:" in out.stderr, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    for needle in needles:
        assert needle in out.stderr, (needle, out.stderr[-3000:])
    return out.stderr


def snapshot(folder: Path) -> dict[str, str]:
    """`relative path -> sha256` of every file under `folder` (the lock file excluded)."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def kill_when(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 600) -> None:
    """SIGKILLs `proc` as soon as `condition()` holds (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"process ended (rc {proc.returncode}) before the kill point")
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the kill point was never reached")


@pytest.fixture(scope="module")
def seg_data(tmp_path_factory) -> Path:
    """Eight random 24x24 images with square masks, as `images/` + `masks/` folders."""
    root = tmp_path_factory.mktemp("seg")
    rng = np.random.default_rng(0)
    for d in ("images", "masks"):
        (root / d).mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(
            root / "images" / f"x{i}.png"
        )
        mask = np.zeros((24, 24), np.uint8)
        mask[6:18, 6:18] = 255
        Image.fromarray(mask).save(root / "masks" / f"x{i}.png")
    return root
