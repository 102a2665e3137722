"""benchmarks/gpu_throughput.py: runs TF-free on CPU at tiny sizes and measures both frameworks."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    args = bench.parse_args(["--models", "b1", "--workers", "3"])
    config = bench.runner_config("b1", args)
    assert config.model.name == "efficientnet_b1" and config.model.num_classes == 2
    assert config.model.weights == "" and config.data.image_size == 224
    assert config.run.batch_size == 128 and config.run.mixed_precision and config.data.workers == 3
    opt = config.optimizer
    assert (opt.name, opt.learning_rate, opt.momentum, opt.schedule) == (
        "sgd",
        1e-3,
        0.9,
        "constant",
    )


def test_parse_args_source_and_summary():
    bench = load_script()
    args = bench.parse_args(["--models", "b0, b1", "--image-size", "16", "--source-images", "3"])
    assert args.models == ["b0", "b1"] and args.batch == 128 and args.device == "auto"
    with pytest.raises(SystemExit):
        bench.parse_args(["--warmup", "0"])
    source, what = bench.make_source(args, length=7)
    assert len(source) == 7 and "3 random uint8 16x16" in what
    assert source[4]["image"].dtype == np.uint8 and source[4]["image"].shape == (16, 16, 3)
    np.testing.assert_array_equal(source[4]["image"], source[1]["image"])  # cycles over 3
    with pytest.raises(IndexError):
        source[7]

    def result(ours, torch):
        keras = {"with_loader": {"images_per_second": ours}, "step_only": {"images_per_second": 9}}
        return {"keras": keras, "torch": {"images_per_second": torch}}

    line = bench.summary({"models": {"b0": result(120.0, 100.0), "b1": result(90.0, 100.0)}})
    assert line.startswith("SUMMARY FAIL") and "b0: ours 120" in line and "= 0.90x" in line
    assert bench.summary({"models": {"b0": result(100.0, 100.0)}}).startswith("SUMMARY PASS")
    missing = bench.summary({"models": {"b0": {"torch": {"error": "OOM"}}}})
    assert missing.startswith("SUMMARY FAIL") and "incomplete" in missing


@pytest.fixture(scope="module")
def sample_array_record(tmp_path_factory) -> Path:
    """The embedded CC0 sample prepared as ArrayRecord (what `tfds.data_source` reads)."""
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401

    data_dir = tmp_path_factory.mktemp("tfds")
    builder = tfds.builder("isic_archive/sample", data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare(file_format="array_record")
    return data_dir


RUN_HIDDEN = (
    HIDE_TENSORFLOW
    + "\nimport runpy\nsys.argv = sys.argv[1:]\n"
    + ("runpy.run_path(sys.argv[0], run_name='__main__')\n")
)


@pytest.mark.slow
def test_cpu_smoke_run_without_tensorflow(tmp_path, sample_array_record):
    out = tmp_path / "result.json"
    command = [
        sys.executable, "-c", RUN_HIDDEN, str(SCRIPT), "--models", "b0", "--batch", "4",
        "--image-size", "32", "--steps", "2", "--warmup", "1", "--workers", "2",
        "--device", "cpu", "--out", str(out),
        "--data-dir", str(sample_array_record), "--dataset", "isic_archive/sample",
    ]  # fmt: skip
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["errors"] == [] and result["tensorflow_imported"] is False
    assert result["keras_info"] == {"backend": "jax", "jax_device": "cpu"}
    assert result["versions"]["keras"] and result["versions"]["torchvision"]
    b0 = result["models"]["b0"]
    rates = {
        "torch": b0["torch"]["images_per_second"],
        "ours": b0["keras"]["with_loader"]["images_per_second"],
        "step only": b0["keras"]["step_only"]["images_per_second"],
        "loader only": b0["keras"]["loader_only"]["images_per_second"],
        "ours, whole fit": b0["keras"]["with_loader"]["whole_fit_images_per_second"],
    }
    for name, rate in rates.items():
        assert math.isfinite(rate) and rate > 0, (name, rate)
    assert math.isfinite(b0["torch"]["final_loss"]) and math.isfinite(
        b0["keras"]["with_loader"]["final_loss"]
    )
    # The compiled step is reused by the loader fit: its first step pays no second compile.
    compile_s = b0["keras"]["step_only"]["compile_s"]
    assert compile_s > 0 and b0["keras"]["with_loader"]["first_step_s"] < compile_s
    assert "tfds.data_source('isic_archive/sample'" in b0["keras"]["source"]
    assert b0["keras"]["loader_only"]["batches"] == 16  # 2 workers x 8 rounds
    assert b0["keras"]["params"] == 4_052_133 and b0["keras"]["jit_compile"] is True
    last = run.stdout.strip().splitlines()[-1]
    assert last == result["summary"] and last.startswith("SUMMARY ") and "b0: ours " in last


@pytest.mark.slow
def test_failures_are_recorded_and_the_rest_still_runs(tmp_path):
    """`--device gpu` on a machine without one: each half fails, is recorded, and the run ends
    with the summary and a non-zero exit instead of a traceback."""
    out = tmp_path / "result.json"
    command = [
        sys.executable, "-c", RUN_HIDDEN, str(SCRIPT), "--models", "b0", "--device", "gpu",
        "--out", str(out),
    ]  # fmt: skip
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert run.returncode == 1, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [e.split(":")[0] for e in result["errors"]] == ["b0 torch", "keras_info"]
    assert "torch.cuda.is_available() is False" in result["models"]["b0"]["torch"]["error"]
    assert "JAX runs on cpu" in result["keras_info"]["error"]
    assert "keras" not in result["models"]["b0"]  # no 224 px run on the wrong device
    last = run.stdout.strip().splitlines()[-1]
    assert last == "SUMMARY FAIL (ours >= PyTorch): b0: incomplete (ours None, torch None)"
