"""Compile time of one training step, and whether JAX's persistent compilation cache served it.

Builds and compiles a registry model exactly as the training runner does (`devices.configure`
turns on the cache in `--cache`, then `build_model` / `compile_model`), runs two training steps on
one random batch and prints one JSON line: the first step (trace + compile or cache read + run),
the second (run only), their difference as the compile time, and the cache's hits and misses as
JAX counts them (`jax.monitoring`). Run it twice with the same `--cache` in two processes: the
first compiles and writes the cache, the second reads it (`gpu_throughput.py` and
`tests/training/test_devices.py` do). JAX backend only; imports no TensorFlow.

    KERAS_BACKEND=jax python benchmarks/compile_time.py --model efficientnet_lite0 \\
        --image-size 128 --batch 32 --cache /tmp/jax-cache
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="meshnet", help="registry model name")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--num-classes", type=int, default=2)
    p.add_argument("--cache", default="", help="compilation cache folder ('' = no cache)")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return p.parse_args(argv)


def measure(args: argparse.Namespace) -> dict:
    """Two training steps of the configured model; see the module docstring."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import keras
    import numpy as np

    from tfmelanoma.config import load_config
    from tfmelanoma.training import devices
    from tfmelanoma.training.runner import build_model, compile_model

    counts = {"hits": 0, "misses": 0}

    def listen(event: str, **kwargs) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            counts["hits"] += 1
        elif event == "/jax/compilation_cache/cache_misses":
            counts["misses"] += 1

    jax.monitoring.register_event_listener(listen)
    config = load_config(
        None,  # the dataclass defaults, not the `default` preset (a pretrained Lite0)
        [
            f"model.name={args.model}",
            f"model.num_classes={args.num_classes}",
            f"data.image_size={args.image_size}",
            f"run.batch_size={args.batch}",
            f"run.mixed_precision={str(args.mixed_precision).lower()}",
            f"run.compile_cache={args.cache}",
            "optimizer.name=sgd",
            *args.overrides,
        ],
    )
    started = time.perf_counter()
    devices.configure(config)  # the cache, as `python -m tfmelanoma.train` sets it
    keras.utils.set_random_seed(config.run.seed)
    model = build_model(config)
    compile_model(model, config, steps_per_epoch=10)
    built = time.perf_counter()
    rng = np.random.default_rng(0)
    size, batch = args.image_size, args.batch
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    y = np.eye(args.num_classes, dtype=np.float32)[rng.integers(0, args.num_classes, batch)]
    if args.num_classes == 1:
        y = rng.integers(0, 2, (batch, 1)).astype(np.float32)
    times = []
    for _ in range(2):
        t = time.perf_counter()
        model.train_on_batch(x, y)  # returns host values: the step has finished
        times.append(time.perf_counter() - t)
    cache = devices.compile_cache_dir(config)
    return {
        "model": args.model,
        "image_size": size,
        "batch": batch,
        "device": str(jax.devices()[0].device_kind),
        "build_s": round(built - started, 3),
        "first_step_s": round(times[0], 3),
        "second_step_s": round(times[1], 3),
        "compile_s": round(times[0] - times[1], 3),
        "cache": str(cache) if cache else None,
        "cache_hits": counts["hits"],
        "cache_misses": counts["misses"],
        "cache_files": len([p for p in cache.rglob("*") if p.is_file()]) if cache else 0,
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(args)
    line = json.dumps(result)
    if args.out:
        args.out.write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
