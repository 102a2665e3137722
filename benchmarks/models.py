"""Size and CPU latency of registry classifiers (the web budget: MeshNet < 1 MB float32).

Usage:
    python benchmarks/models.py                      # meshnet, tinyvgg, efficientnet_lite0
    python benchmarks/models.py --models meshnet mobilenet_v3_small --size 224 --runs 20

For each model: parameters, float32 weight bytes after BatchNorm folding (what the TF.js export
stores), `.keras` file size, and the median wall time of a batch-1 forward pass on CPU (after
warm-up) and its process CPU time (steadier on a shared machine). Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tfmelanoma.models import create_model, fold_batchnorm  # noqa: E402


def measure(name: str, size: int, runs: int) -> dict:
    """Builds `name` at `size` px and measures it.

    Args:
        name: registry name.
        size: square input size.
        runs: timed forward passes.

    Returns:
        A dict of the measured figures.
    """
    model = create_model(name, input_shape=(size, size, 3))
    folded = fold_batchnorm(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.keras"
        folded.save(path)
        file_bytes = path.stat().st_size
    image = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
    for _ in range(3):
        folded(image, training=False)
    times, cpu_times = [], []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        folded(image, training=False)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return {
        "model": name,
        "params": model.count_params(),
        "folded_params": folded.count_params(),
        "float32_mb": folded.count_params() * 4 / 1e6,
        "keras_file_mb": file_bytes / 1e6,
        "latency_ms": 1000 * float(np.median(times)),
        "cpu_ms": 1000 * float(np.median(cpu_times)),
    }


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["meshnet", "tinyvgg", "efficientnet_lite0"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    print(
        f"input {args.size}x{args.size}, batch 1, CPU, median of {args.runs} runs, load {os.getloadavg()[0]:.1f}"
    )
    print(
        "| model | params | after BN folding | float32 MB | .keras MB | wall ms | process CPU ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        r = measure(name, args.size, args.runs)
        print(
            f"| {r['model']} | {r['params']:,} | {r['folded_params']:,} | {r['float32_mb']:.2f} "
            f"| {r['keras_file_mb']:.2f} | {r['latency_ms']:.1f} | {r['cpu_ms']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
