"""Training throughput: our `model.fit` end to end against PyTorch eager, on one machine (issue 15).

One run, each measurement in its own process under a time limit, the JSON (`--out`) rewritten
after every measurement, the whole run within `--budget` seconds (default 540: one 9-minute GPU
call, whatever is left when time runs out is skipped and said so):

1. PyTorch (per model): torchvision `efficientnet_b*` (weights=None), channels_last, bf16
   autocast, SGD, eager, random data on the device (`torch_reference.py`).
2. Compile (per model, twice, two processes, one fresh `--cache` folder): our train step built and
   compiled as the runner does (`compile_time.py`: `devices.configure` turns on JAX's persistent
   compilation cache); the first process compiles and writes the cache, the second reads it
   (`--compile-models`, default b0 only: a 224 px B1 compile takes minutes of the budget; B1's
   step-only fit then compiles cold, and its first step says how long).
3. Ours (per model, one process, cache warm): the training runner's own stages on a config of
   defaults plus overrides (`runner_config`: efficientnet_b*, SGD, mixed_bfloat16, `--pipeline`)
   over an ArrayRecord dataset (`--data-dir`, `--dataset`): `load_data` (the runner's splits),
   `make_inputs` (the configured pipeline with its real augmentation; a pipeline that augments
   inside the step wraps the model, as the runner does), then
   - loader alone: img/s of the training input through Keras's own data adapter, no model;
   - step only: `fit` on 4 batches taken from that input and kept in memory (no loader work);
   - end to end: `fit` on the input itself, the figure compared with PyTorch.

img/s exclude the first `--warmup` steps (compile, autotune, worker start); the loader prepares
batches ahead, so the end-to-end fit also reports a whole-fit figure timed from its first request.
The last line printed is `SUMMARY PASS|FAIL (ours >= 1.5x PyTorch): ...`. No TensorFlow is
imported (the GPU host has none) unless `--pipeline tf`.

    KERAS_BACKEND=jax python benchmarks/gpu_throughput.py --device gpu --data-dir DIR \\
        --dataset kaggle_fanconic --out $OUT/gpu_throughput.json

On the GPU host: `benchmarks/device/run_gpu.sh` (docs/benchmarks.md has the `run` call).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # torch_reference, compile_time: beside this file
TARGET = 1.5  # issue 15: end-to-end fit >= 1.5x PyTorch eager
PIPELINES = ("auto", "numpy", "tf", "grain")  # data.pipeline values (grain: once it exists)
LIMITS = {"torch": 150, "compile": 300, "keras": 300}  # seconds per stage, at most


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="b0,b1", help="EfficientNet variants, e.g. b0,b1")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--steps", type=int, default=100, help="timed steady-state steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed first steps (>= 1)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--out", type=Path, default=Path("gpu_throughput.json"))
    p.add_argument("--pipeline", choices=PIPELINES, default="auto", help="data.pipeline")
    p.add_argument("--workers", type=int, default=0, help="data.workers (0 = the pipeline's)")
    p.add_argument("--data-dir", default="", help="TFDS data dir with the dataset as ArrayRecord")
    p.add_argument("--dataset", default="sample", help="data.train, e.g. kaggle_fanconic")
    p.add_argument("--work", type=Path, default=None, help="per-stage JSON (default: --out's)")
    p.add_argument("--cache", default="", help="compilation cache (default: fresh, in --work)")
    p.add_argument("--compile-models", default="b0", help="models whose compile is measured")
    p.add_argument("--budget", type=float, default=540, help="seconds for the whole run")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--skip-keras", action="store_true")
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--stage", choices=("torch", "keras"), help=argparse.SUPPRESS)  # a child
    args = p.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or args.batch < 1:
        p.error("--warmup, --steps and --batch must be >= 1")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.compile_models = [m.strip() for m in args.compile_models.split(",") if m.strip()]
    return args


def set_environment(device: str) -> None:
    """Backend settings; must run before keras / jax are imported."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"


def runner_config(arch: str, args: argparse.Namespace):
    """The training Config of this benchmark: defaults plus `--set`-style overrides."""
    from tfmelanoma.config import load_config

    return load_config(
        None,  # the dataclass defaults, not the `default` preset (a pretrained Lite0)
        [
            f"model.name=efficientnet_{arch}",
            "model.num_classes=2",
            f"data.train=[{args.dataset}]",
            f"data.test={args.dataset}",  # its official test split, else a held-out part
            f"data.data_dir={args.data_dir}",
            f"data.image_size={args.image_size}",
            f"data.pipeline={args.pipeline}",
            f"data.workers={args.workers}",
            "data.balance=none",
            f"run.batch_size={args.batch}",
            f"run.steps_per_epoch={args.warmup + args.steps}",
            "run.mixed_precision=true",
            "run.jit_compile=true",  # TensorFlow only; on JAX the runner always compiles
            f"run.compile_cache={args.cache}",
            "run.evaluate=false",
            "optimizer.name=sgd",
            "optimizer.learning_rate=0.001",
            "optimizer.momentum=0.9",
            "optimizer.schedule=constant",
        ],
    )


def _timed_fit(model, data, steps: int, warmup: int, callbacks=()) -> dict:
    """Fits `warmup + steps` steps; times from each step's logs becoming ready."""
    import keras

    class StepTimes(keras.callbacks.Callback):
        async_safe = True  # Keras reads logs in a worker thread: the loop does not wait

        def __init__(self):
            super().__init__()
            self.begin, self.ends = 0.0, {}

        def on_train_begin(self, logs=None):
            self.begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.ends[batch] = time.perf_counter()

    times = StepTimes()
    total = warmup + steps
    history = model.fit(
        data, epochs=1, steps_per_epoch=total, callbacks=[*callbacks, times], verbose=0,
        shuffle=False,
    )  # fmt: skip
    if len(times.ends) < total:
        raise RuntimeError(f"fit ran {len(times.ends)} of {total} steps (data ran out?)")
    seconds = times.ends[total - 1] - times.ends[warmup - 1]
    return {
        "step_ms": 1000 * seconds / steps,
        "first_step_s": times.ends[0] - times.begin,
        "final_loss": float(history.history["loss"][-1]),
        "_seconds": seconds,
        "_whole_seconds": times.ends[total - 1] - times.begin,
    }


def keras_stage(arch: str, args: argparse.Namespace, record) -> None:
    """Our end-to-end fit, step only and loader alone; results via `record(key, fn)`."""
    import keras
    from keras.src.trainers.data_adapters import get_data_adapter

    from tfmelanoma.training import devices, tasks

    config = runner_config(arch, args)
    task = tasks.task_of(config)
    devices.configure(config)  # compile cache, mixed_bfloat16
    pipeline = task.resolve_pipeline(config)
    keras.utils.set_random_seed(config.run.seed)
    total, batch = args.warmup + args.steps, args.batch
    state = {}

    def setup():
        splits = task.load_data(config, pipeline)
        data = task.make_inputs(config, pipeline, splits, 0, 1)
        model = task.build_model(config)
        wrap = getattr(data, "wrap", None)  # a pipeline that augments inside the step
        if wrap is not None:
            model = wrap(model)
        task.compile_model(model, config, total, weighted=data.padded)
        state.update(data=data, model=model)
        return {
            "pipeline": pipeline,
            "dataset": f"{args.dataset} (train split: {len(splits.train)} images)",
            "augment_in_step": wrap is not None,
            "params": int(model.count_params()),
            "jit_compile": bool(model.jit_compile),
            "jax_device": _jax_device(),
        }

    record("setup", setup)
    if "model" not in state:
        return
    data, model = state["data"], state["model"]

    def loader_only():
        adapter = get_data_adapter(data.train, steps_per_epoch=total, shuffle=False)
        adapter.on_epoch_begin()
        try:
            batches = iter(adapter.get_numpy_iterator())
            start = time.perf_counter()
            keep = min(4, total)
            state["kept"] = [next(batches) for _ in range(keep)]  # for the step-only fit
            for _ in range(total - keep):
                next(batches)
            seconds = time.perf_counter() - start
        finally:
            adapter.on_epoch_end()
        return {"images_per_second": total * batch / seconds, "batches": total}

    record("loader_only", loader_only)

    def step_only():
        kept = state["kept"]

        class Kept(keras.utils.PyDataset):
            def __len__(self):
                return total

            def __getitem__(self, i):
                return kept[i % len(kept)]

        r = _timed_fit(model, Kept(), args.steps, args.warmup)
        r["images_per_second"] = args.steps * batch / r.pop("_seconds")
        r.pop("_whole_seconds")
        r["compile_s"] = r["first_step_s"] - r["step_ms"] / 1000
        return r

    if "kept" in state:
        record("step_only", step_only)

    def end_to_end():
        r = _timed_fit(model, data.train, args.steps, args.warmup, data.callbacks)
        r["images_per_second"] = args.steps * batch / r.pop("_seconds")
        r["whole_fit_images_per_second"] = total * batch / r.pop("_whole_seconds")
        return r

    record("end_to_end", end_to_end)


def _jax_device() -> str:
    import jax

    return str(jax.devices()[0].device_kind)


def versions() -> dict:
    """Versions of what ran (read from the imported modules: metadata may be hidden)."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("tfmelanoma", "keras", "jax", "jaxlib", "numpy", "torch", "torchvision", "grain"):
        version = getattr(sys.modules.get(name), "__version__", None)
        try:
            out[name] = version or md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def run_stage(args: argparse.Namespace) -> int:
    """A child: one framework, one model (`--models`), its part of the JSON in `--out`."""
    import traceback

    arch = args.models[0]
    part: dict = {"errors": []}

    def save():
        part["versions"] = versions()
        part["tensorflow_imported"] = "tensorflow" in sys.modules
        args.out.write_text(json.dumps(part, indent=2, default=str))

    def record(key, fn):
        start = time.perf_counter()
        try:
            part[key] = fn()
            print(f"{arch} {key}: {json.dumps(part[key], default=str)}", flush=True)
        except Exception as e:  # noqa: BLE001 - one failure (e.g. OOM) must not stop the rest
            part[key] = {"error": f"{type(e).__name__}: {e}"[:2000]}
            part["errors"].append(f"{arch} {args.stage} {key}: {type(e).__name__}: {e}"[:500])
            traceback.print_exc()
        part[key + "_wall_s"] = round(time.perf_counter() - start, 2)
        save()

    if args.stage == "torch":
        import torch_reference

        record("torch", lambda: torch_reference.torch_throughput(arch, args))
    else:

        def check_device():
            if args.device == "gpu" and "gpu" not in _jax_device().lower() + _platform():
                raise RuntimeError(f"--device gpu but JAX runs on {_platform()}")
            return _jax_device()

        record("jax_device", check_device)
        if "error" not in part["jax_device"]:
            keras_stage(arch, args, record)
    save()
    return 1 if part["errors"] else 0


def _platform() -> str:
    import jax

    return jax.devices()[0].platform


def summary(results: dict) -> str:
    """One line: ours (end to end) vs PyTorch per model, PASS when every ratio is >= TARGET."""
    parts, ok = [], True
    for arch, r in results["models"].items():
        keras = r.get("keras", {})
        ours = keras.get("end_to_end", {}).get("images_per_second")
        step = keras.get("step_only", {}).get("images_per_second")
        loader = keras.get("loader_only", {}).get("images_per_second")
        ref = r.get("torch", {}).get("images_per_second")
        first, second = (r.get(k, {}).get("compile_s") for k in ("compile_first", "compile_second"))
        extra = f"; loader {loader or float('nan'):.0f}; compile {first} s then {second} s"
        if ours and ref:
            ratio = ours / ref
            ok &= ratio >= TARGET
            parts.append(
                f"{arch}: ours {ours:.0f} (step only {step or float('nan'):.0f}) vs torch "
                f"{ref:.0f} img/s = {ratio:.2f}x{extra}"
            )
        else:
            ok = False
            parts.append(f"{arch}: incomplete (ours {ours}, torch {ref}){extra}")
    return f"SUMMARY {'PASS' if ok else 'FAIL'} (ours >= {TARGET}x PyTorch): " + " | ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """The run: every stage in a child process; returns 0 when every stage ran cleanly."""
    args = parse_args(argv)
    set_environment(args.device)
    if args.stage:
        return run_stage(args)
    deadline = time.monotonic() + args.budget
    args.out.parent.mkdir(parents=True, exist_ok=True)
    work = args.work or args.out.parent
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache) if args.cache else work / f"{args.out.stem}.jax-cache"
    if not args.cache:
        shutil.rmtree(cache, ignore_errors=True)  # a fresh folder: the first compile is cold
    results = {"args": {k: str(v) for k, v in vars(args).items()}, "cache": str(cache)}
    results.update(errors=[], skipped=[], models={a: {} for a in args.models})

    def save():
        args.out.write_text(json.dumps(results, indent=2, default=str))

    common = [
        "--batch", str(args.batch), "--image-size", str(args.image_size), "--steps",
        str(args.steps), "--warmup", str(args.warmup), "--device", args.device,
    ]  # fmt: skip

    def child(name: str, arch: str, command: list[str], limit: float) -> dict | None:
        """Runs one stage; its JSON, or None (the reason recorded)."""
        left = deadline - time.monotonic()
        if left < 30:
            results["skipped"].append(f"{arch} {name}: {left:.0f} s of the budget left")
            save()
            return None
        part = work / f"{args.out.stem}.{arch}.{name}.json"
        part.unlink(missing_ok=True)
        limit = min(limit, left - 5)
        print(f"== {arch} {name} (at most {limit:.0f} s)", flush=True)
        start = time.perf_counter()
        try:
            rc = subprocess.run(command + ["--out", str(part)], timeout=limit).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        wall = round(time.perf_counter() - start, 1)
        value = json.loads(part.read_text()) if part.is_file() and part.stat().st_size else {}
        if rc != 0:
            results["errors"].append(f"{arch} {name}: exit {rc} after {wall} s")
        results["errors"] += value.pop("errors", [])
        value.update(wall_s=wall, exit=rc)
        return value

    me = [sys.executable, str(Path(__file__).resolve())]
    if not args.skip_torch:
        for arch in args.models:
            value = child("torch", arch, [*me, "--stage", "torch", "--models", arch, *common],
                          LIMITS["torch"])  # fmt: skip
            if value is not None:
                results["models"][arch]["torch"] = value.pop("torch", value)
            save()
    for arch in [] if args.skip_keras else args.models:
        if not args.skip_compile and arch in args.compile_models:
            probe = [
                sys.executable, str(HERE / "compile_time.py"), "--model", f"efficientnet_{arch}",
                "--image-size", str(args.image_size), "--batch", str(args.batch),
                "--cache", str(cache), "--mixed-precision",
            ]  # fmt: skip
            for key in ("compile_first", "compile_second"):
                value = child(key, arch, probe, LIMITS["compile"])
                if value is not None:
                    results["models"][arch][key] = value
                save()
        command = [*me, "--stage", "keras", "--models", arch, *common, "--pipeline",
                   args.pipeline, "--workers", str(args.workers), "--data-dir", args.data_dir,
                   "--dataset", args.dataset, "--cache", str(cache)]  # fmt: skip
        value = child("keras", arch, command, LIMITS["keras"])
        if value is not None:
            results["models"][arch]["keras"] = value
        save()
    results["summary"] = summary(results)
    save()
    print(results["summary"], flush=True)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
