"""benchmarks/gpu_throughput.py and device/run_gpu.sh: TF-free on CPU at tiny sizes, every stage."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tf_hidden import HIDE_TENSORFLOW

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_throughput.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runner_config_is_the_issue_setting():
    bench = load_script()
    args = bench.parse_args(
        ["--models", "b1", "--workers", "3", "--pipeline", "numpy", "--data-dir", "/d"]
        + ["--dataset", "kaggle_fanconic", "--steps", "20", "--warmup", "2", "--cache", "/c"]
    )
    config = bench.runner_config("b1", args)
    assert config.model.name == "efficientnet_b1" and config.model.num_classes == 2
    assert config.model.weights == "" and config.data.image_size == 224
    assert config.run.batch_size == 128 and config.run.mixed_precision and config.data.workers == 3
    assert config.data.train == ("kaggle_fanconic",) and config.data.test == "kaggle_fanconic"
    assert (config.data.pipeline, config.data.data_dir) == ("numpy", "/d")
    assert config.run.steps_per_epoch == 22 and config.run.compile_cache == "/c"
    assert config.augment.enabled and not config.run.evaluate
    opt = config.optimizer
    assert (opt.name, opt.learning_rate, opt.momentum, opt.schedule) == (
        "sgd",
        1e-3,
        0.9,
        "constant",
    )


def test_parse_args_and_summary():
    bench = load_script()
    args = bench.parse_args(["--models", "b0, b1", "--image-size", "16"])
    assert args.models == ["b0", "b1"] and args.batch == 128 and args.device == "auto"
    assert args.compile_models == ["b0"] and args.budget == 540
    with pytest.raises(SystemExit):
        bench.parse_args(["--warmup", "0"])

    def result(ours, torch):
        keras = {"end_to_end": {"images_per_second": ours}, "step_only": {"images_per_second": 9}}
        keras["loader_only"] = {"images_per_second": 700}
        return {
            "keras": keras,
            "torch": {"images_per_second": torch},
            "compile_first": {"compile_s": 80.0},
            "compile_second": {"compile_s": 3.0},
        }

    line = bench.summary({"models": {"b0": result(160.0, 100.0), "b1": result(140.0, 100.0)}})
    assert line.startswith("SUMMARY FAIL (ours >= 1.5x PyTorch)") and "b0: ours 160" in line
    assert "= 1.40x" in line and "loader 700; compile 80.0 s then 3.0 s" in line
    assert bench.summary({"models": {"b0": result(150.0, 100.0)}}).startswith("SUMMARY PASS")
    missing = bench.summary({"models": {"b0": {"torch": {"error": "OOM"}}}})
    assert missing.startswith("SUMMARY FAIL") and "incomplete" in missing


def test_a_spent_budget_skips_every_stage_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "jax"))  # restored after
    bench = load_script()
    out = tmp_path / "r.json"
    assert bench.main(["--models", "b0", "--budget", "10", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [s.split(":")[0] for s in result["skipped"]] == [
        "b0 torch", "b0 compile_first", "b0 compile_second", "b0 keras",
    ]  # fmt: skip
    assert result["summary"].startswith("SUMMARY FAIL") and "incomplete" in result["summary"]


RUN_HIDDEN = (
    HIDE_TENSORFLOW
    + "\nimport runpy\nsys.argv = sys.argv[1:]\n"
    + ("runpy.run_path(sys.argv[0], run_name='__main__')\n")
)


@pytest.fixture(scope="module")
def sample_array_record(tmp_path_factory) -> Path:
    """The embedded CC0 sample prepared as ArrayRecord (what `tfds.data_source` reads)."""
    from tfmelanoma.datasets import get_builder

    data_dir = tmp_path_factory.mktemp("tfds")
    get_builder("sample", str(data_dir), file_format="array_record")
    return data_dir


@pytest.mark.slow
def test_gpu_script_cpu_smoke_form_without_tensorflow(tmp_path, sample_array_record):
    """benchmarks/device/run_gpu.sh as the GPU host runs it, at tiny sizes on the CPU, with
    TensorFlow hidden from every Python process (a sitecustomize on PYTHONPATH)."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_TENSORFLOW)
    out = tmp_path / "OUT"
    env = dict(
        os.environ, OUT=str(out), SMOKE="1", WHEELS="", PYTHON=sys.executable,
        DATA_DIR=str(sample_array_record), DATASET="sample", PYTHONPATH=str(hide),
    )  # fmt: skip
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device" / "run_gpu.sh")],
        capture_output=True, text=True, timeout=900, env=env, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_throughput.json", "log"]  # <= 8 back
    result = json.loads((out / "gpu_throughput.json").read_text())
    assert result["errors"] == [] and result["skipped"] == []
    b0 = result["models"]["b0"]
    first, second = b0["compile_first"], b0["compile_second"]
    assert first["cache_hits"] == 0 and first["cache_misses"] > 0
    assert second["cache_misses"] == 0 and second["cache_hits"] == first["cache_misses"]
    keras = b0["keras"]
    assert b0["torch"]["torchvision_shim"] in (True, False)
    assert keras["tensorflow_imported"] is False and first["tensorflow_imported"] is False
    assert keras["setup"]["pipeline"] == "numpy" and keras["jax_device"] == "cpu"
    assert keras["setup"]["params"] == 4_052_133 and keras["setup"]["jit_compile"] is True
    rates = {
        "torch": b0["torch"]["images_per_second"],
        "end to end": keras["end_to_end"]["images_per_second"],
        "whole fit": keras["end_to_end"]["whole_fit_images_per_second"],
        "step only": keras["step_only"]["images_per_second"],
        "loader only": keras["loader_only"]["images_per_second"],
    }
    for name, rate in rates.items():
        assert math.isfinite(rate) and rate > 0, (name, rate)
    # The step compiled for the step-only fit is the end-to-end fit's: no second compile.
    assert keras["end_to_end"]["first_step_s"] < keras["step_only"]["first_step_s"]
    log = (out / "log").read_text()
    assert result["summary"] in log and "run_gpu.sh: exit 0" in log
    assert run.stdout.strip().splitlines()[-2] == result["summary"]


@pytest.mark.slow
def test_failures_are_recorded_and_the_rest_still_runs(tmp_path):
    """`--device gpu` on a machine without one: each stage fails, is recorded, and the run ends
    with the summary and a non-zero exit instead of a traceback."""
    out = tmp_path / "result.json"
    command = [
        sys.executable, "-c", RUN_HIDDEN, str(SCRIPT), "--models", "b0", "--device", "gpu",
        "--skip-compile", "--out", str(out),
    ]  # fmt: skip
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert run.returncode == 1, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [e.split(":")[0] for e in result["errors"]] == [
        "b0 torch", "b0 torch torch", "b0 keras", "b0 keras jax_device",
    ]  # fmt: skip
    assert "torch.cuda.is_available() is False" in result["models"]["b0"]["torch"]["error"]
    assert "JAX runs on cpu" in result["models"]["b0"]["keras"]["jax_device"]["error"]
    assert "setup" not in result["models"]["b0"]["keras"]  # no 224 px run on the wrong device
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("SUMMARY FAIL") and "b0: incomplete (ours None, torch None)" in last
