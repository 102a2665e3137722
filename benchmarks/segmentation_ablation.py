"""AER-Net ablation (U-Net -> +attention -> +residual -> AER-Net) on ISIC 2017 masks, timed.

Trains the four rows of the paper's Table 2 with identical data, recipe and seed through
`python -m tfmelanoma.segment train --preset ablation`, then prints the validation table
(mean per-image Jaccard / Dice on the official validation split, ISIC 2018 thresholded Jaccard)
and the wall time per model. Defaults are a CPU-sized run (64 px, 500 training images, 3 epochs);
`--full` uses the paper's recipe (256 px, all 2,000 images, 100 epochs, batch 16) for a GPU.

    python benchmarks/segmentation_ablation.py --data-dir ../shared/data/isic2017 --out runs/seg_ablation
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from tfmelanoma import segment

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="ISIC 2017 official folders")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--full", action="store_true", help="paper recipe instead of CPU-small")
    parser.add_argument("--encoder", default="efficientnetb1")
    parser.add_argument("--weights", default="none", help="aernet encoder weights (none|imagenet)")
    args, extra = parser.parse_known_args()
    argv = [
        "train",
        "--preset",
        "ablation",
        "--data",
        "isic2017",
        "--data-dir",
        str(args.data_dir),
        "--out",
        str(args.out),
        "--encoder",
        args.encoder,
        "--weights",
        args.weights,
        *(FULL if args.full else CPU_SMALL),
        *extra,
    ]
    start = time.perf_counter()
    segment.main(argv)
    total = time.perf_counter() - start
    env = {
        "argv": argv,
        "total_seconds": round(total, 1),
        "cpu_count": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "machine": platform.processor() or platform.machine(),
    }
    (args.out / "benchmark.json").write_text(json.dumps(env, indent=2) + "\n")
    print(json.dumps(env, indent=2))


if __name__ == "__main__":
    main()
