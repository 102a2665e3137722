"""Times TFDS preparation of kaggle_fanconic and isic2017 from ../shared/data: images/s, peak RSS.

    python benchmarks/prepare.py [--data-root ../shared/data] [--formats tfrecord,array_record]

Each (dataset, config, format) is prepared from scratch into a fresh temp data dir, in its own
subprocess, so the peak RSS (`ru_maxrss`) belongs to that preparation alone; the RSS after the
imports (TensorFlow, which TFDS uses to encode images, TFDS, the builders) is printed too, so the
growth due to preparation is visible.
Wall-clock images/s depends on how busy the machine is; images per CPU-second (user + system time
of the process) is printed beside it as the load-independent figure. Prints one Markdown table row
per run for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
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
# (builder, config, folder under the data root): full-size configs, the real work of a user.
RUNS = [
    ("kaggle_fanconic", "original", "kaggle_fanconic"),
    ("isic2017", "segmentation_original", "isic2017"),
    ("isic2017", "classification_512", "isic2017"),
]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(name: str, config: str, manual_dir: str, file_format: str) -> dict:
    """Prepares one dataset into a temp dir; returns counts, seconds and memory."""
    # TFDS encodes images with TensorFlow during preparation; import it first so that the
    # baseline includes it and `peak - baseline` is what preparing costs.
    import tensorflow  # noqa: F401
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401  (registers the builders)

    rss_after_imports = _rss_mb()
    with tempfile.TemporaryDirectory(prefix="prepare_bench_") as data_dir:
        builder = tfds.builder(name, config=config, data_dir=data_dir, file_format=file_format)
        start, cpu_start = time.perf_counter(), _cpu_s()
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
        seconds, cpu_seconds = time.perf_counter() - start, _cpu_s() - cpu_start
        n = sum(split.num_examples for split in builder.info.splits.values())
        size_mb = sum(f.stat().st_size for f in Path(data_dir).rglob("*") if f.is_file()) / 2**20
    return {
        "dataset": name,
        "config": config,
        "format": file_format,
        "examples": n,
        "seconds": round(seconds, 1),
        "images_per_s": round(n / seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "images_per_cpu_s": round(n / cpu_seconds, 1),
        "rss_after_imports_mb": round(rss_after_imports),
        "peak_rss_mb": round(_rss_mb()),
        "output_mb": round(size_mb, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--formats", default="tfrecord,array_record")
    parser.add_argument(
        "--only", default="", help="comma-separated builder names to run (default: all)"
    )
    parser.add_argument("--worker", nargs=4, metavar=("NAME", "CONFIG", "MANUAL_DIR", "FORMAT"))
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    print(f"# {os.cpu_count()} CPU(s), python {sys.version.split()[0]}")
    print(
        "| dataset | config | format | examples | wall s | images/s | CPU s | images/CPU-s | "
        "RSS after imports | peak RSS | output |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    only = {n for n in args.only.split(",") if n}
    for name, config, folder in RUNS:
        if only and name not in only:
            continue
        for file_format in args.formats.split(","):
            manual_dir = str(Path(args.data_root) / folder)
            out = subprocess.run(
                [sys.executable, __file__, "--worker", name, config, manual_dir, file_format],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                sys.exit(f"{name}/{config} ({file_format}) failed:\n{out.stderr[-3000:]}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {r['dataset']} | {r['config']} | {r['format']} | {r['examples']:,} | "
                f"{r['seconds']} | {r['images_per_s']} | {r['cpu_seconds']} | "
                f"{r['images_per_cpu_s']} | {r['rss_after_imports_mb']} MB | "
                f"{r['peak_rss_mb']} MB | {r['output_mb']} MB |",
                flush=True,
            )


if __name__ == "__main__":
    main()
