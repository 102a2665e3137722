"""AER-Net ablation (U-Net -> +attention -> +residual -> AER-Net) on ISIC 2017 masks, timed.

Trains the four rows of the paper's Table 2 (or the `--models` given) with identical data, recipe
and seed through `python -m tfmelanoma.segment train`, then prints the validation table (mean
per-image Jaccard / Dice on the official validation split, ISIC 2018 thresholded Jaccard) and the
wall time per model. Defaults are a CPU-sized run (64 px, 500 training images, 3 epochs);
`--full` uses the paper's recipe (256 px, all 2,000 images, 100 epochs, batch 16) for a GPU.
Unknown arguments go to `segment train` (e.g. `--epochs 30 --workers 12`).

CPU, official folders, TensorFlow:

    python benchmarks/segmentation_ablation.py --data-dir ../shared/data/isic2017 --out runs/seg_ablation

GPU host (no TensorFlow there: Keras 3 on JAX reading ArrayRecord through `tfds.data_source`).
1. Here, with TensorFlow, prepare the `isic2017/segmentation_512` config as ArrayRecord into an
   ignored folder. The shared copy of ISIC 2017 is stored at 256x256, so this config holds 256 px
   images (measured: 30,348,891 bytes of files, 2,000 train + 150 validation examples):

    echo /.tfds_seg/ >> .git/info/exclude
    python benchmarks/segmentation_ablation.py --prepare ../shared/data/isic2017 --tfds-data-dir .tfds_seg

2. Build the wheels folder `.whl` as in /work/shared/GPU.md (keras, tensorflow-datasets,
   array_record, ...; about 13 MB: with the data about 43 MB, under the 64 MiB a call carries).
3. Through the `device` tool, carry [".whl", ".tfds_seg"]; one call per model or two (a call
   runs at most 10 minutes; `--models aernet`, `--epochs N` to fit):

    d=$(mktemp -d) && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --target $d .whl/*.whl && export PYTHONPATH=$d:$PWD KERAS_BACKEND=jax && \
    timeout 580 python3 benchmarks/segmentation_ablation.py --full --models unet \
      --data tfds:isic2017/segmentation_512 --tfds-data-dir .tfds_seg --workers 12 \
      --out $OUT/seg_ablation 2>&1 | tee $OUT/log
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from tfmelanoma import segment
from tfmelanoma.evaluation import segmentation as report

CPU_SMALL = [
    "--image-size",
    "64",
    "--limit",
    "500",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--base-filters",
    "16",
    "--depth",
    "4",
    "--bn-momentum",
    "0.9",
]
FULL = ["--preset", "paper"]
CONFIG = "isic2017/segmentation_512"


def prepare(manual_dir: Path, data_dir: str) -> None:
    """Prepares `isic2017/segmentation_512` as ArrayRecord (needs TensorFlow, i.e. run it here)."""
    import tensorflow_datasets as tfds  # noqa: PLC0415

    from tfds_builders.isic2017 import isic2017_dataset_builder as isic2017  # noqa: PLC0415

    builder = isic2017.Builder(
        config="segmentation_512", data_dir=data_dir, file_format="array_record"
    )
    builder.download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)),
    )
    folder = Path(builder.data_dir)
    size = sum(p.stat().st_size for p in Path(data_dir).rglob("*") if p.is_file())
    print(f"prepared {folder}: {dict(builder.info.splits)}; {data_dir} holds {size:,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        default="isic2017",
        help=f"isic2017 (official folders under --data-dir) or tfds:{CONFIG} (ArrayRecord)",
    )
    parser.add_argument("--data-dir", type=Path, help="ISIC 2017 official folders")
    parser.add_argument("--tfds-data-dir", help="TFDS data dir for --data tfds:... / --prepare")
    parser.add_argument(
        "--prepare", type=Path, metavar="MANUAL_DIR", help=f"only prepare {CONFIG} as ArrayRecord"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--full", action="store_true", help="paper recipe instead of CPU-small")
    parser.add_argument(
        "--models", default=",".join(segment.ABLATION), help="comma-separated subset, in order"
    )
    parser.add_argument("--encoder", default="efficientnetb1")
    parser.add_argument("--weights", default="none", help="aernet encoder weights (none|imagenet)")
    args, extra = parser.parse_known_args()
    if args.prepare:
        if not args.tfds_data_dir:
            parser.error("--prepare needs --tfds-data-dir")
        prepare(args.prepare, args.tfds_data_dir)
        return
    if args.out is None:
        parser.error("--out is required")
    if args.data.startswith("tfds:"):
        data = ["--data", args.data]
        if args.tfds_data_dir:
            data += ["--tfds-data-dir", args.tfds_data_dir]
    elif args.data_dir is None:
        parser.error(f"--data {args.data} needs --data-dir")
    else:
        data = ["--data", args.data, "--data-dir", str(args.data_dir)]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    recipe = [
        *data,
        "--encoder",
        args.encoder,
        "--weights",
        args.weights,
        *(FULL if args.full else CPU_SMALL),
        *extra,
    ]
    start = time.perf_counter()
    rows = []
    for name in models:
        segment.main(["train", "--model", name, *recipe, "--out", str(args.out / name)])
        rows.append(json.loads((args.out / name / "summary.json").read_text()))
    total = time.perf_counter() - start
    report.write_ablation(rows, args.out)
    import keras  # noqa: PLC0415

    env = {
        "argv": ["train", "--model", "<each of models>", *recipe, "--out", str(args.out)],
        "models": models,
        "backend": keras.backend.backend(),
        "total_seconds": round(total, 1),
        "cpu_count": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "machine": platform.processor() or platform.machine(),
    }
    (args.out / "benchmark.json").write_text(json.dumps(env, indent=2) + "\n")
    print(json.dumps(env, indent=2))


if __name__ == "__main__":
    main()
