"""Loader alone, images/s at 224 px: the decoded-cache paths (grain, tf.data) against
`NumpyBatches`.

All serve training batches of the same split, in one process, one after the other:

- `numpy`: `NumpyBatches` (decode each JPEG, resize, augment with NumPy/Pillow, threads);
- `grain`: `cached_batches.CachedBatches` through grain (gather uint8 rows of the memory-mapped
  decoded cache + draw the augmentation parameters; the pixels are augmented later, inside the
  compiled step, on the accelerator). The one-time cache build is timed separately.
- `tf_cached`: the same batches through tf.data (`pipeline.cached_dataset`), where TensorFlow is
  installed.

Prints (and writes with --out) JSON: images/s, images/s per core, the ratio, the load average.
Run on an otherwise idle machine, with datasets prepared as ArrayRecord:

    python benchmarks/loader.py                      # the embedded sample (prepared in a temp dir)
    python benchmarks/loader.py --data-dir ~/tensorflow_datasets --dataset kaggle_fanconic
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path


def _rate(batches, n_images: int) -> float:
    it = iter(batches)
    next(it)  # start-up (threads, processes, first read) is not throughput
    started, seen = time.perf_counter(), 0
    while seen < n_images:
        batch = next(it)
        x = batch[0]
        seen += len(x["image"] if isinstance(x, dict) else x)
    return seen / (time.perf_counter() - started)


def _endless(batches):
    epoch = 0
    while True:
        batches.set_epoch(epoch)
        for i in range(len(batches)):
            yield batches[i]
        epoch += 1


def _augment_in_step(ds, config, size: int) -> dict:
    """What the grain path moves into the step: `DeviceAugment` alone, jitted, on this machine's
    default JAX device (the CPU here; the GPU there). Only with KERAS_BACKEND=jax."""
    import keras

    if keras.backend.backend() != "jax":
        return {}
    import jax

    from tfmelanoma.data import device_augment

    layer = device_augment.augment_layer(config.augment, size)
    step = jax.jit(lambda images, params: layer(images, params, training=True))
    x = next(iter(ds))[0]
    images, params = (jax.device_put(x[k]) for k in (device_augment.IMAGE_KEY, "augment_params"))
    step(images, params).block_until_ready()  # compile
    started, n = time.perf_counter(), 0
    while time.perf_counter() - started < 3:
        step(images, params).block_until_ready()
        n += len(x[device_augment.IMAGE_KEY])
    return {
        "augment_in_step_device": str(jax.devices()[0]),
        "augment_in_step_img_s": round(n / (time.perf_counter() - started), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--data-dir", default="", help="TFDS data dir ('' = a temp dir)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=3000, help="images timed per loader")
    parser.add_argument("--workers", type=int, default=0, help="0 = CPU count")
    parser.add_argument("--grain-workers", type=int, default=0, help="grain worker processes")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)

    from tfmelanoma.config import load_config
    from tfmelanoma.data import grain_pipeline
    from tfmelanoma.data.cached_batches import CachedBatches
    from tfmelanoma.data.numpy_pipeline import NumpyBatches
    from tfmelanoma.training import inputs
    from tfmelanoma.training.data import load_splits

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="loader_bench_")
    cores = len(os.sched_getaffinity(0))
    workers = args.workers or cores
    config = load_config(
        None,  # the dataclass defaults, not the `default` preset (a pretrained Lite0)
        [
            f"data.train={args.dataset}", f"data.test={args.dataset}", f"data.data_dir={data_dir}",
            f"data.image_size={args.size}", f"run.batch_size={args.batch}",
            f"data.workers={workers}",
        ],
    )  # fmt: skip
    train = load_splits(config, file_format="array_record").train
    labels = train.frame["label"].to_numpy()
    result = {
        "dataset": args.dataset, "examples": len(train), "size": args.size, "batch": args.batch,
        "cores": cores, "numpy_threads": workers, "grain_threads": 1,
        "grain_workers": args.grain_workers,
    }  # fmt: skip

    started = time.perf_counter()
    cache = inputs._decoded(train, config, inputs.cache_size(config))
    result["cache_build_or_open_s"] = round(time.perf_counter() - started, 2)
    result["cache_size"] = cache.size
    maker = CachedBatches(
        cache, labels, augment_config=config.augment, batch_size=args.batch, num_classes=2,
        image_size=args.size,
    )  # fmt: skip
    ds = grain_pipeline.dataset(maker, epochs=1000, workers=args.grain_workers)
    result["grain_img_s"] = round(_rate(ds, args.images), 1)
    if importlib.util.find_spec("tensorflow") is not None:
        from tfmelanoma.data import pipeline as tf_pipeline

        tf_ds = tf_pipeline.cached_dataset(maker, epochs=1000).as_numpy_iterator()
        result["tf_cached_img_s"] = round(_rate(tf_ds, args.images), 1)

    numpy_batches = NumpyBatches(
        train.as_data_source(), image_size=args.size, batch_size=args.batch, num_classes=2,
        augment_config=config.augment, workers=workers,
    )  # fmt: skip
    result["numpy_img_s"] = round(_rate(_endless(numpy_batches), min(args.images, 1000)), 1)

    result.update(_augment_in_step(ds, config, args.size))
    for key in ("grain", "tf_cached", "numpy"):
        if f"{key}_img_s" in result:
            result[f"{key}_img_s_per_core"] = round(result[f"{key}_img_s"] / cores, 1)
    result["ratio_grain_over_numpy"] = round(result["grain_img_s"] / result["numpy_img_s"], 1)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
