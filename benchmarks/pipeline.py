"""Input pipeline throughput: prepared TFDS records -> augmented 224 px batches.

Measures our tf.data pipeline (`tfmelanoma.data.pipeline.training_dataset`, every augmentation
on) against a plain PIL + NumPy loop doing comparable work (decode, resize, random crop, flips,
rotation, colour jitter) in the same process, and prints images/s, images/s per core and the
ratio. Run on an otherwise idle machine:

    python benchmarks/pipeline.py --dataset kaggle_fanconic --manual-dir ../shared/data/kaggle_fanconic
    python benchmarks/pipeline.py --dataset sample
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time

import numpy as np
from PIL import Image, ImageEnhance


def _tf_pipeline(source, n_images: int, size: int, batch: int) -> float:
    from tfmelanoma.config import AugmentConfig
    from tfmelanoma.data import pipeline

    cfg = AugmentConfig(zoom=0.1, cutout=0.1)
    ds, _ = pipeline.training_dataset(
        source, image_size=size, batch_size=batch, num_classes=2, augment_config=cfg, seed=0,
        cache=False,
    )  # fmt: skip
    it = iter(ds)
    next(it)  # tracing and the first batch are not throughput
    started, seen = time.perf_counter(), 0
    while seen < n_images:
        images, _ = next(it)
        seen += int(images.shape[0])
    return seen / (time.perf_counter() - started)


def _pil_loop(encoded: list[bytes], n_images: int, size: int) -> float:
    rng = np.random.default_rng(0)
    started, seen = time.perf_counter(), 0
    while seen < n_images:
        for data in encoded:
            img = Image.open(io.BytesIO(data)).convert("RGB")
            w, h = img.size
            s = rng.uniform(0.8, 1.0) ** 0.5
            cw, ch = int(w * s), int(h * s)
            x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
            img = img.crop((x, y, x + cw, y + ch)).resize((size, size), Image.Resampling.BILINEAR)
            img = img.rotate(rng.uniform(-90, 90), resample=Image.Resampling.BILINEAR)
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.9, 1.1))
            img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.9, 1.1))
            img = ImageEnhance.Color(img).enhance(rng.uniform(0.9, 1.1))
            _ = np.asarray(img, dtype=np.float32)
            seen += 1
            if seen >= n_images:
                break
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="sample")
    parser.add_argument("--manual-dir", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    from tfmelanoma.datasets import get_builder

    builder = get_builder(args.dataset, args.data_dir, manual_dir=args.manual_dir)
    split = "train"
    import tensorflow_datasets as tfds

    source = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    encoded = [ex["image"] for ex in tfds.as_numpy(source.take(500))]
    source = source.map(lambda ex: {"image": ex["image"], "label": ex["label"]})
    cores = len(os.sched_getaffinity(0))
    ours = _tf_pipeline(source, args.images, args.size, args.batch)
    baseline = _pil_loop(encoded, min(args.images, 1000), args.size)
    result = {
        "dataset": builder.info.full_name,
        "size": args.size,
        "cores": cores,
        "tf_data_images_per_s": round(ours, 1),
        "tf_data_images_per_s_per_core": round(ours / cores, 1),
        "pil_numpy_images_per_s": round(baseline, 1),
        "ratio": round(ours / baseline, 2),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
