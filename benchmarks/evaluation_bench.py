"""Times the evaluation paths: the report (bootstrap included), TTA and Grad-CAM.

    python benchmarks/evaluation_bench.py [--sizes 1000,10000] [--bootstrap 1000]

Synthetic predictions (an overconfident binary model) for the report; the registry's MeshNet at
64 px, untrained, for TTA and Grad-CAM (timing does not depend on the weights). Prints one
Markdown table row per measurement for docs/benchmarks.md: wall time and process CPU time (the
latter is less inflated when other jobs share the cores).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def synthetic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    logits = rng.normal(0, 1.5, (n, 2))
    logits[np.arange(n), y] += 2.0
    z = 2.0 * logits
    p = np.exp(z - z.max(1, keepdims=True))
    return y, p / p.sum(1, keepdims=True)


def bench_report(sizes, n_boot: int) -> None:
    from tfmelanoma.evaluation import EvalConfig, evaluate_predictions

    for n in sizes:
        yv, pv = synthetic(n, 0)
        yt, pt = synthetic(n, 1)
        ids = [f"img{i}" for i in range(n)]
        for plots in (False, True):
            cfg = EvalConfig(bootstrap_n=n_boot, plots=plots)
            with tempfile.TemporaryDirectory() as out:
                t, c = time.perf_counter(), time.process_time()
                evaluate_predictions(yt, pt, ids, ["non_melanoma", "melanoma"], out, yv, pv, cfg)
                dt, dc = time.perf_counter() - t, time.process_time() - c
            print(
                f"| evaluate_predictions, N={n} test + {n} val, bootstrap {n_boot}, "
                f"plots {'on' if plots else 'off'} | {dt:.2f} s | {dc:.2f} s |"
            )


def bench_models(batch: int, size: int) -> None:
    from tfmelanoma.evaluation import gradcam, tta
    from tfmelanoma.evaluation.inference import predict_batches
    from tfmelanoma.models import create_model, get_model_info

    model = create_model("meshnet", input_shape=(size, size, 3))
    images = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    predict_batches(model, images[:2])  # warm-up (graph tracing)
    for name, fn in (
        ("plain prediction", lambda: predict_batches(model, images, batch)),
        ("TTA (1 plain + 8 views)", lambda: tta.tta_predict(model, images, batch_size=batch)),
        (
            "Grad-CAM",
            lambda: gradcam.grad_cam(model, images, get_model_info("meshnet").last_conv_layer),
        ),
        (
            "Grad-CAM++",
            lambda: gradcam.grad_cam(
                model, images, get_model_info("meshnet").last_conv_layer, plus=True
            ),
        ),
    ):
        fn()
        t, c = time.perf_counter(), time.process_time()
        reps = 3
        for _ in range(reps):
            fn()
        dt, dc = (time.perf_counter() - t) / reps, (time.process_time() - c) / reps
        print(
            f"| MeshNet {size} px, {name}, batch {batch} | {dt * 1000 / batch:.1f} ms / image "
            f"| {dc * 1000 / batch:.1f} ms / image |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--skip-models", action="store_true")
    args = parser.parse_args()
    print("| measurement | wall time | process CPU time |\n|---|---|---|")
    bench_report([int(s) for s in args.sizes.split(",")], args.bootstrap)
    if not args.skip_models:
        bench_models(args.batch, args.image_size)


if __name__ == "__main__":
    main()
