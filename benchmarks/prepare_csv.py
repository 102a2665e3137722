"""Peak memory and speed of preparing ISIC 2019 / 2020 from their real CSVs with synthetic images.

    python benchmarks/prepare_csv.py [--dataset isic2019] [--rows 2000,25331] [--image-size 32]

The real label CSVs (../shared/data/csv) are used in full or cut to the first N rows; every image
they name is a hard link to one small synthetic JPEG (the real 9-23 GB of images are not here).
So the figures measure the builders' own row handling (CSV streaming, joins, duplicate and
missing/unlabelled checks, the example loop) and TFDS's writer at scale, not JPEG decoding of
full-size images. Each run prepares from scratch in its own subprocess, so `ru_maxrss` belongs to
that preparation alone; the RSS after the imports is printed too. One Markdown row per run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
# dataset -> (CSV folder, CSV files to cut to N rows, image folder, column naming the image)
LAYOUTS = {
    "isic2019": (
        "ISIC2019",
        ["ISIC_2019_Training_GroundTruth.csv", "ISIC_2019_Training_Metadata.csv"],
        "ISIC_2019_Training_Input",
        "image",
    ),
    "isic2020": (
        "ISIC2020",
        ["ISIC_2020_Training_GroundTruth_v2.csv"],
        "train",
        "image_name",
    ),
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_manual_dir(dataset: str, csv_root: Path, rows: int, image_size: int, out: Path) -> int:
    """Writes the cut CSVs and one hard-linked JPEG per image; returns the number of images."""
    from PIL import Image

    folder, files, image_dir, column = LAYOUTS[dataset]
    (out / image_dir).mkdir(parents=True)
    names = []
    for i, name in enumerate(files):
        with (csv_root / folder / name).open(newline="") as f, (out / name).open("w") as g:
            reader = csv.DictReader(f)
            writer = csv.DictWriter(g, reader.fieldnames)
            writer.writeheader()
            for n, row in enumerate(reader):
                if n == rows:
                    break
                writer.writerow(row)
                if i == 0:
                    names.append(row[column])
    if dataset == "isic2020":  # the full duplicates list: pairs beyond the cut are ignored
        src = csv_root / folder / "ISIC_2020_Training_Duplicates.csv"
        (out / src.name).write_bytes(src.read_bytes())
    template = out / "template.jpg"
    w, h = image_size, max(1, image_size * 3 // 4)
    Image.effect_noise((w, h), 40).convert("RGB").save(template, quality=90)
    for name in names:
        os.link(template, out / image_dir / f"{name}.jpg")
    template.unlink()
    return len(names)


def worker(dataset: str, config: str, manual_dir: str) -> dict:
    """Prepares one dataset into a temp dir; returns counts, seconds and memory."""
    import tensorflow  # noqa: F401  (TFDS imports it while writing; count it in the baseline)
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401  (registers the builders)

    rss_after_imports = _rss_mb()
    with tempfile.TemporaryDirectory(prefix="prepare_csv_bench_") as data_dir:
        builder = tfds.builder(dataset, config=config, data_dir=data_dir)
        start = time.perf_counter()
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
        seconds = time.perf_counter() - start
        n = sum(split.num_examples for split in builder.info.splits.values())
    return {
        "examples": n,
        "seconds": round(seconds, 1),
        "images_per_s": round(n / seconds, 1),
        "rss_after_imports_mb": round(rss_after_imports),
        "peak_rss_mb": round(_rss_mb()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(LAYOUTS), default="isic2019")
    parser.add_argument("--config", default="original")
    parser.add_argument("--rows", default="2000,25331", help="comma-separated row counts")
    parser.add_argument("--image-size", type=int, default=32, help="synthetic image width (px)")
    parser.add_argument("--csv-root", type=Path, default=REPO.parent / "shared" / "data" / "csv")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    print(
        "| dataset | config | CSV rows | examples | image px | s | images/s | RSS after imports MB | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for rows in [int(r) for r in args.rows.split(",")]:
        with tempfile.TemporaryDirectory(prefix="prepare_csv_manual_") as manual:
            n = make_manual_dir(args.dataset, args.csv_root, rows, args.image_size, Path(manual))
            out = subprocess.run(
                [sys.executable, __file__, "--worker", args.dataset, args.config, manual],
                check=True,
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {args.dataset} | {args.config} | {n} | {r['examples']} | {args.image_size} "
                f"| {r['seconds']} | {r['images_per_s']} | {r['rss_after_imports_mb']} "
                f"| {r['peak_rss_mb']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
