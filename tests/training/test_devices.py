"""`training.devices` on JAX: the persistent compilation cache, several processes, per-process data.

The slow tests run subprocesses with TensorFlow hidden (the GPU host's case): the compilation
cache is read by a second process, and two processes joined by `jax.distributed.initialize` on
localhost (CPU, gloo collectives) train exactly as one process with two devices.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.tf_hidden import HIDE_TENSORFLOW, hidden_cli
from tfmelanoma import config as config_lib
from tfmelanoma.training import devices

ROOT = Path(__file__).resolve().parents[2]


def test_local_rows_and_process_shard(monkeypatch):
    import keras

    class Global(keras.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            x = np.arange(8, dtype=np.float32).reshape(4, 2) + 100 * i
            return x, np.arange(4) + 10 * i, np.ones(4)

    assert devices.per_process(batches := Global()) is batches  # one process: as it is
    assert devices.local_rows(6) == slice(0, 6)
    monkeypatch.setattr(devices, "process_count", lambda: 2)
    monkeypatch.setattr(devices, "process_index", lambda: 1)
    assert devices.local_rows(6) == slice(3, 6)
    with pytest.raises(ValueError, match="batch of 5 does not split evenly between 2"):
        devices.local_rows(5)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    shard = devices.per_process(Global())
    assert isinstance(shard, devices.ProcessShard) and len(shard) == 3
    x, y, w = shard[2]
    np.testing.assert_array_equal(x, [[204, 205], [206, 207]])
    np.testing.assert_array_equal(y, [22, 23])
    assert w.shape == (2,)
    own = Global()
    own.per_process = True  # an input that builds its own rows is not wrapped
    assert devices.per_process(own) is own
    with pytest.raises(ValueError, match="a list input must feed only this process's rows"):
        devices.per_process([1, 2])  # e.g. a loader that knows nothing of processes


def test_tensorflow_multiworker_is_refused_before_anything_runs(monkeypatch):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    config = config_lib.load_config("smoke", ["run.distribute=multiworker"])
    with pytest.raises(ValueError, match=r"keras-team/keras#20585.*KERAS_BACKEND=jax"):
        devices.placement(config)


def test_resume_takes_runtime_keys_but_not_hyperparameters(tmp_path):
    config_lib.save_config(config_lib.load_config("smoke"), tmp_path / "config.yaml")
    resumed = config_lib.resume_config(
        tmp_path,
        None,
        ["run.process_id=1", "run.num_processes=2", "run.compile_cache=", "run.coordinator=h:1"],
    )
    assert (resumed.run.process_id, resumed.run.num_processes) == (1, 2)
    assert resumed.run.compile_cache == "" and resumed.run.coordinator == "h:1"
    assert resumed.run.epochs == 2  # the run's own
    with pytest.raises(config_lib.ConfigError, match="run.epochs"):
        config_lib.resume_config(tmp_path, None, ["run.epochs=5"])
    with pytest.raises(config_lib.ConfigError, match="process_id=-2"):
        config_lib.load_config("smoke", ["run.process_id=-2"])


def _compile(cache: str) -> dict:
    script = HIDE_TENSORFLOW + (
        "\nimport runpy\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    command = [
        sys.executable, "-c", script, str(ROOT / "benchmarks" / "compile_time.py"),
        "--model", "meshnet", "--image-size", "32", "--batch", "8", "--cache", cache,
    ]  # fmt: skip
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_reads_the_compilation_cache(tmp_path):
    cache = tmp_path / "jax-cache"
    first = _compile(str(cache))
    assert first["tensorflow_imported"] is False
    # A fresh folder: everything is compiled and written (min compile time 0, any size).
    assert first["cache_hits"] == 0 and first["cache_misses"] > 0
    assert first["cache_files"] == first["cache_misses"]
    second = _compile(str(cache))
    # The same programs in a new process: every one read back, none compiled.
    assert second["cache_misses"] == 0 and second["cache_hits"] == first["cache_misses"]
    assert second["cache_files"] == first["cache_files"]
    off = _compile("")  # run.compile_cache="": no cache at all
    assert off["cache"] is None and off["cache_hits"] == off["cache_misses"] == 0


@pytest.fixture(scope="module")
def data_dir(sample_array_record) -> Path:
    return sample_array_record


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["numpy", "grain"])
def test_two_processes_train_as_one_process_with_two_devices(pipeline, data_dir, tmp_path):
    # numpy: every process prepares the global batch and keeps its rows (ProcessShard); grain:
    # each process gathers only its rows from the decoded cache (CachedBatches' `process`).
    env = dict(os.environ, KERAS_BACKEND="jax", TFDS_DATA_DIR=str(data_dir), JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = str(ROOT)
    cache = f"run.compile_cache={tmp_path / 'cache'}"
    base = [sys.executable, "-c", hidden_cli("tfmelanoma.train"), "--config", "smoke", "-q"]
    base += ["--set", "run.epochs=2", "--set", cache, "--set", f"data.pipeline={pipeline}"]
    one = subprocess.run(
        [*base, "--run-dir", str(tmp_path / "one"), "--set", "run.distribute=mirrored"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env=dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=2"),
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]

    run_dir = tmp_path / "two"
    cluster = [
        "--run-dir", str(run_dir), "--set", "run.distribute=multiworker",
        "--set", f"run.coordinator=localhost:{_free_port()}", "--set", "run.num_processes=2",
    ]  # fmt: skip
    follower = subprocess.Popen(
        [*base, *cluster, "--set", "run.process_id=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        chief = subprocess.run(
            [*base, *cluster], capture_output=True, text=True, timeout=600, cwd=ROOT,
            env=dict(env, KERAS_DISTRIBUTION_PROCESS_ID="0"),  # the id from the environment
        )  # fmt: skip
        out, err = follower.communicate(timeout=600)
    finally:
        follower.kill()
    assert chief.returncode == 0, chief.stderr[-3000:]
    assert follower.returncode == 0, err[-3000:]
    assert "TF_LOADED False" in chief.stdout and "TF_LOADED False" in out
    assert "trained; process 0 writes the run folder" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["processes"], metrics["replicas"]) == (2, 2)
    assert metrics["pipeline"] == pipeline
    assert metrics["distribution"] == "keras.distribution.DataParallel"
    assert (run_dir / "evaluation" / "report.md").is_file()
    # Each process fed its half of every global batch: the same steps as one process with two
    # devices, so the same history, number for number.
    assert (run_dir / "history.csv").read_text() == (tmp_path / "one" / "history.csv").read_text()


def test_compile_cache_auto_follows_the_cache_environment(monkeypatch, tmp_path):
    from tfmelanoma.config import load_config
    from tfmelanoma.training.devices import compile_cache_dir

    config = load_config("smoke")
    assert config.run.compile_cache == "auto"
    monkeypatch.setenv("TFMELANOMA_CACHE_DIR", str(tmp_path / "t"))
    assert compile_cache_dir(config) == tmp_path / "t" / "jax"
    monkeypatch.delenv("TFMELANOMA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert compile_cache_dir(config) == tmp_path / "x" / "tfmelanoma" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert compile_cache_dir(config) == tmp_path / "h" / ".cache" / "tfmelanoma" / "jax"
