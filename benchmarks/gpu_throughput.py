"""Training throughput: our Keras 3 + JAX training step and loader against PyTorch (issue #5).

For each EfficientNet (B0, B1 by default; 224 px, bf16, batch 128), in one process:

- ours, loader: the registry model built and compiled by the training runner's own
  `build_model` / `compile_model` (SGD, cross-entropy, accuracy + AUC; `devices.configure` sets
  `mixed_bfloat16`; XLA on JAX), trained with `model.fit` on batches from our TF-free loader
  (`NumpyBatches`: resize + augmentation in NumPy, `--workers` prefetching threads) over a
  random-access source of uint8 images (random ones in memory, or `tfds.data_source` over an
  ArrayRecord dataset with `--data-dir`);
- ours, step only: the same compiled model fit on preloaded float32 NumPy batches (no loader work),
  GPU.md's reference setting; its first step minus a steady step is the compile time;
- the loader alone: img/s of the same `NumpyBatches` through Keras's own data adapter;
- PyTorch: torchvision `efficientnet_b*` (weights=None), channels_last, bf16 autocast, SGD step,
  eager, random data on the device, timed with `torch.cuda.synchronize()`.

img/s are steady-state: the first `--warmup` steps (compile, cuDNN autotune, worker start) are
excluded; the loader alone is timed from its first request over whole rounds of its workers, as
it prepares batches ahead (so does the loader fit, which also reports a whole-fit figure). Every measurement is guarded: an error (e.g. out of memory) is recorded in the JSON and
the rest still runs. The JSON is rewritten after every measurement. The last line printed is the
summary: ours (with loader) / PyTorch per model, PASS when ours >= PyTorch. Imports no TensorFlow.

CPU smoke run (tests/benchmarks/test_gpu_throughput.py runs it with TensorFlow hidden and
`--data-dir` over the embedded sample prepared as ArrayRecord):
    KERAS_BACKEND=jax python benchmarks/gpu_throughput.py --models b0 --batch 4 --image-size 32 \
        --steps 2 --warmup 1 --workers 2 --device cpu --out /tmp/gpu_throughput.json

On the H100 through `device` (build the carry first: `bash benchmarks/device/make_carry.sh`),
`run` with carry=[".whl"], timeout_s=600 and this command (one line):
    d=$(mktemp -d) && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir
    --target $d .whl/*.whl && export PYTHONPATH=$PWD:$d KERAS_BACKEND=jax PYTHONUNBUFFERED=1 &&
    set -o pipefail && timeout 570 python3 benchmarks/gpu_throughput.py --device gpu
    --out $OUT/gpu_throughput.json 2>&1 | tee $OUT/log
docs/benchmarks.md, "Training throughput on the H100", has it verbatim, and the results.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script, via runpy or imported
import torch_reference  # noqa: E402  (benchmarks/torch_reference.py, beside this file)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="b0,b1", help="EfficientNet variants, e.g. b0,b1")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--steps", type=int, default=100, help="timed steady-state steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed first steps (>= 1)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--out", type=Path, default=Path("gpu_throughput.json"))
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-keras", action="store_true")
    p.add_argument(
        "--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2), help="loader workers"
    )
    p.add_argument("--source-images", type=int, default=1024, help="distinct in-memory images")
    p.add_argument("--source-size", type=int, default=0, help="stored side (0 = --image-size)")
    p.add_argument("--data-dir", default="", help="TFDS data dir holding an ArrayRecord dataset")
    p.add_argument("--dataset", default="kaggle_fanconic", help="TFDS name, with --data-dir")
    p.add_argument("--split", default="train")
    args = p.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or args.batch < 1:
        p.error("--warmup, --steps and --batch must be >= 1")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    return args


def set_environment(device: str) -> None:
    """Backend and memory settings; must run before keras / jax are imported."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    # PyTorch and JAX share the GPU in this process: JAX must not take 75 % of it up front.
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.6")


class RepeatingSource:
    """A random-access source of `length` examples cycling over `base` (no copies)."""

    def __init__(self, base, length: int):
        self.base, self.length = base, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        example = self.base[index % len(self.base)]
        return {"image": example["image"], "label": example["label"]}


def make_source(args: argparse.Namespace, length: int) -> tuple[RepeatingSource, str]:
    """uint8 example dicts: an ArrayRecord dataset with `--data-dir`, else random images."""
    import numpy as np

    if args.data_dir:
        import tensorflow_datasets as tfds

        base = tfds.data_source(args.dataset, split=args.split, data_dir=args.data_dir)
        what = f"tfds.data_source({args.dataset!r}, split={args.split!r}), {len(base)} examples"
    else:
        side = args.source_size or args.image_size
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (args.source_images, side, side, 3), dtype=np.uint8)
        base = [{"image": im, "label": i % 2} for i, im in enumerate(images)]
        what = f"{len(base)} random uint8 {side}x{side} images in memory"
    return RepeatingSource(base, length), what


def runner_config(arch: str, args: argparse.Namespace):
    """The training Config of this benchmark: defaults plus `--set`-style overrides."""
    from tfmelanoma.config import load_config

    return load_config(
        "default",
        [
            f"model.name=efficientnet_{arch}",
            "model.num_classes=2",
            f"data.image_size={args.image_size}",
            f"run.batch_size={args.batch}",
            "run.mixed_precision=true",
            "run.jit_compile=true",  # TensorFlow only; on JAX the runner always compiles the step
            f"data.workers={args.workers}",
            "optimizer.name=sgd",
            "optimizer.learning_rate=0.001",
            "optimizer.momentum=0.9",
            "optimizer.schedule=constant",
        ],
    )


def _timed_fit(model, data, steps: int, warmup: int) -> dict:
    """Fits `warmup + steps` steps; times from each step's logs becoming ready."""
    import keras

    class StepTimes(keras.callbacks.Callback):
        # async_safe: Keras reads each step's logs in a worker thread, so timing does not make
        # the training loop wait for the device after every step.
        async_safe = True

        def __init__(self):
            super().__init__()
            self.begin, self.ends = 0.0, {}

        def on_train_begin(self, logs=None):
            self.begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.ends[batch] = time.perf_counter()

    times = StepTimes()
    history = model.fit(
        data, epochs=1, steps_per_epoch=warmup + steps, callbacks=[times], verbose=0, shuffle=False
    )
    done = len(times.ends)
    if done < warmup + steps:
        raise RuntimeError(f"fit ran {done} of {warmup + steps} steps (data ran out?)")
    seconds = times.ends[warmup + steps - 1] - times.ends[warmup - 1]
    return {
        "step_ms": 1000 * seconds / steps,
        "first_step_s": times.ends[0] - times.begin,
        "final_loss": float(history.history["loss"][-1]),
        "_seconds": seconds,
        "_whole_seconds": times.ends[warmup + steps - 1] - times.begin,
    }


def keras_throughput(arch: str, args: argparse.Namespace, record) -> None:
    """Our model, compile, step-only fit, loader-only and loader fit; results via `record`."""
    import keras
    import numpy as np

    from tfmelanoma.data.numpy_pipeline import NumpyBatches
    from tfmelanoma.training import devices
    from tfmelanoma.training.runner import build_model, compile_model

    config = runner_config(arch, args)
    devices.configure(config)  # the mixed_bfloat16 policy
    keras.utils.set_random_seed(config.run.seed)
    size, batch, total = args.image_size, args.batch, args.warmup + args.steps
    model = build_model(config)  # create_model("efficientnet_b*", weights=None), 2 classes
    compile_model(model, config, steps_per_epoch=total)
    record("params", int(model.count_params()))
    record("jit_compile", bool(model.jit_compile))

    class Preloaded(keras.utils.PyDataset):
        """A few float32 batches already in memory, served in turn: no loader work."""

        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(1)
            self.x = rng.uniform(0, 255, (4, batch, size, size, 3)).astype(np.float32)
            self.y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, (4, batch))]

        def __len__(self):
            return total

        def __getitem__(self, i):
            return self.x[i % 4], self.y[i % 4]

    def step_only():
        r = _timed_fit(model, Preloaded(), args.steps, args.warmup)
        r["images_per_second"] = args.steps * batch / r.pop("_seconds")
        r.pop("_whole_seconds")
        r["compile_s"] = r["first_step_s"] - r["step_ms"] / 1000
        return r

    record("step_only", step_only)
    # Loader alone: a whole number of rounds of the workers, at least 8 (see loader_only).
    workers = config.data.workers
    loader_batches = workers * max(8, -(-total // workers))
    source, what = make_source(args, length=max(total, loader_batches) * batch)
    record("source", what)
    loader_kwargs = dict(
        image_size=size,
        batch_size=batch,
        num_classes=config.model.num_classes,
        augment_config=config.augment,
        seed=config.run.seed,
        workers=workers,
        prefetch=2 * workers,  # every worker busy (the runner keeps the default 8)
    )

    def loader_only():
        # Keras's own adapter, as `fit` uses it, with no model behind.
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        # Timed from the first request: batches are prepared `prefetch` ahead, so a window
        # starting later would count work done before it. Whole rounds of the workers keep the
        # start-up cost (one thread pool) out of the figure.
        data = NumpyBatches(source, steps_per_epoch=loader_batches, **loader_kwargs)
        adapter = PyDatasetAdapter(data, shuffle=False)
        adapter.on_epoch_begin()
        try:
            batches = iter(adapter.get_numpy_iterator())
            start = time.perf_counter()
            next(batches)
            first = time.perf_counter() - start
            for _ in range(loader_batches - 1):
                next(batches)
            seconds = time.perf_counter() - start
        finally:
            adapter.on_epoch_end()
        return {
            "images_per_second": loader_batches * batch / seconds,
            "batches": loader_batches,
            "first_batch_s": first,
        }

    record("loader_only", loader_only)

    def with_loader():
        data = NumpyBatches(source, steps_per_epoch=total, **loader_kwargs)
        r = _timed_fit(model, data, args.steps, args.warmup)
        # Steady (after warm-up; may include up to `workers` batches prefetched during it) and
        # whole fit (from the first request; includes the first batch's wait): truth between.
        r["images_per_second"] = args.steps * batch / r.pop("_seconds")
        r["whole_fit_images_per_second"] = total * batch / r.pop("_whole_seconds")
        return r

    record("with_loader", with_loader)
    keras.backend.clear_session()


def versions() -> dict:
    """Versions of what ran (read from the imported modules: metadata may be hidden)."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("tfmelanoma", "keras", "jax", "jaxlib", "numpy", "torch", "torchvision"):
        version = getattr(sys.modules.get(name), "__version__", None)
        try:
            out[name] = version or md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def summary(results: dict) -> str:
    """One line: ours (loader) vs PyTorch per model, PASS when every ratio is >= 1."""
    parts, ok = [], True
    for arch, r in results["models"].items():
        ours = r.get("keras", {}).get("with_loader", {}).get("images_per_second")
        step = r.get("keras", {}).get("step_only", {}).get("images_per_second")
        ref = r.get("torch", {}).get("images_per_second")
        if ours and ref:
            ratio = ours / ref
            ok &= ratio >= 1
            parts.append(
                f"{arch}: ours {ours:.0f} (step only {step or float('nan'):.0f}) vs torch "
                f"{ref:.0f} img/s = {ratio:.2f}x"
            )
        else:
            ok = False
            parts.append(f"{arch}: incomplete (ours {ours}, torch {ref})")
    return f"SUMMARY {'PASS' if ok else 'FAIL'} (ours >= PyTorch): " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0 when every measurement ran (PASS or FAIL), else 1."""
    args = parse_args(argv)
    set_environment(args.device)
    results = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "versions": versions(),
        "errors": [],
        "models": {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        results["versions"] = versions()
        results["tensorflow_imported"] = "tensorflow" in sys.modules
        args.out.write_text(json.dumps(results, indent=2, default=str))

    def guarded(where: dict, key: str, fn, label: str = "") -> None:
        """Stores fn() (or a constant) under where[key]; an error is recorded, not raised."""
        if not callable(fn):
            where[key] = fn
            return
        start = time.perf_counter()
        try:
            value = fn()
            if value is not None:
                where[key] = value
                print(f"{key}: {json.dumps(value, default=str)}", flush=True)
        except Exception as e:  # noqa: BLE001 - one failure (e.g. OOM) must not stop the rest
            where[key] = {"error": f"{type(e).__name__}: {e}"[:2000]}
            results["errors"].append(f"{label}{key}: {type(e).__name__}: {e}"[:500])
            traceback.print_exc()
        where[key + "_wall_s"] = round(time.perf_counter() - start, 2)
        save()

    if not args.skip_torch:  # first: JAX then gets the memory PyTorch gave back
        for arch in args.models:
            results["models"].setdefault(arch, {})
            guarded(
                results["models"][arch],
                "torch",
                lambda a=arch: torch_reference.torch_throughput(a, args),
                arch + " ",
            )
            gc.collect()
            if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
                sys.modules["torch"].cuda.empty_cache()
    if not args.skip_keras:

        def keras_info():
            import jax
            import keras

            dev = jax.devices()[0]
            if args.device == "gpu" and dev.platform != "gpu":
                raise RuntimeError(f"--device gpu but JAX runs on {dev.platform}")
            return {"backend": keras.backend.backend(), "jax_device": str(dev.device_kind)}

        guarded(results, "keras_info", keras_info)
        # On the wrong device the 224 px runs would only use up the call's time.
        models = [] if "error" in results["keras_info"] else args.models
        for arch in models:
            mine = results["models"].setdefault(arch, {}).setdefault("keras", {})
            record = lambda key, fn, m=mine, a=arch: guarded(m, key, fn, f"{a} keras ")  # noqa: E731
            run = lambda a=arch, r=record: keras_throughput(a, args, r)  # noqa: E731
            guarded(mine, "setup", run, f"{arch} keras ")
    line = summary(results)
    results["summary"] = line
    save()
    print(line, flush=True)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
