"""De-duplication cost: hashing throughput and pHash matching from 1k to 50k images.

Usage::

    python benchmarks/dedup.py [--sizes 1000,2000,5000,10000,20000,50000] [--hash-images 200]
        [--max-distance 4] [--json out.json]

Hashing runs `tfds_builders.common.read_image` (decode + SHA-256 of pixels + pHash) on real images
from ../shared/data when present, else on synthetic 512 px JPEGs. Matching uses synthetic uniform
64-bit hashes with 1 % planted near-copies; the multi-index join (`dedup.phash_pairs`) is timed
against the quadratic reference up to 10k, and the exponent of the cost is fitted on a log-log
scale (1 = linear, 2 = quadratic). `match_pairs` times the whole rule set (ISIC id, SHA-256, pHash,
lesion, patient) on index frames of the same sizes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfmelanoma.datasets import dedup  # noqa: E402

SHARED = Path(os.environ.get("TFMELANOMA_SHARED_DATA", Path(__file__).parents[2] / "shared/data"))


def _images(n: int) -> tuple[list[Path], str]:
    sources = [
        ("isic2017 (256x256)", SHARED / "isic2017" / "ISIC-2017_Training_Data", "*.jpg"),
        ("isic_archive_uda1 (600 px)", SHARED / "isic_archive_uda1" / "images", "*.jpg"),
    ]
    found = []
    for label, folder, pattern in sources:
        files = sorted(folder.glob(pattern))[:n] if folder.is_dir() else []
        if files:
            found.append((label, files))
    if found:
        return found
    from PIL import Image

    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        coarse = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(coarse).resize((512, 512), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        (tmp / f"{i}.jpg").write_bytes(buf.getvalue())
        files.append(tmp / f"{i}.jpg")
    return [("synthetic 512x512 JPEG", files)]


def bench_hashing(n: int) -> list[dict]:
    from tfds_builders import common

    rows = []
    for label, files in _images(n):
        start = time.process_time()
        for f in files:
            common.read_image(f)
        elapsed = time.process_time() - start
        rows.append({"images": label, "n": len(files), "seconds": elapsed,
                     "images_per_s": len(files) / elapsed})  # fmt: skip
    return rows


def _hashes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**64, n, dtype=np.uint64)
    planted = rng.choice(n - 1, n // 100, replace=False)
    for i in planted:
        bits = rng.choice(64, rng.integers(0, 5), replace=False)
        x[i + 1] = x[i] ^ np.uint64(sum(1 << int(b) for b in bits))
    return x


def _frame(h: np.ndarray) -> pd.DataFrame:
    n = len(h)
    ids = np.array([f"ISIC_{i:07d}" for i in range(n)], dtype=object)
    return pd.DataFrame(
        {
            "dataset": "synthetic",
            "image_id": ids,
            "sha256": [f"{v:016x}" for v in h],
            "phash": [f"{v:016x}" for v in h],
            "patient_id": [f"P{i // 3}" for i in range(n)],
            "lesion_id": "",
        }
    )


def _time(fn, repeat: int = 3) -> float:
    """Best process CPU seconds of `repeat` runs (steadier than wall time on a shared machine)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def bench_matching(sizes: list[int], max_distance: int) -> list[dict]:
    rows = []
    for n in sizes:
        h = _hashes(n)
        mih = _time(lambda h=h: dedup.phash_pairs(h, max_distance=max_distance))
        brute = (
            _time(lambda h=h: dedup.phash_pairs_bruteforce(h, max_distance=max_distance), 1)
            if n <= 10_000
            else float("nan")
        )
        if n <= 10_000:  # the fast join must find exactly what brute force finds
            a = dedup.phash_pairs(h, max_distance=max_distance)
            b = dedup.phash_pairs_bruteforce(h, max_distance=max_distance)
            assert len(a) == len(b), (n, len(a), len(b))
        frame = _frame(h)
        full = _time(lambda f=frame: dedup.match_pairs(f, None, max_distance=max_distance), 1)
        rows.append({"n": n, "phash_mih_s": mih, "phash_bruteforce_s": brute,
                     "match_pairs_all_rules_s": full, "hashes_per_s": n / mih})  # fmt: skip
    return rows


def bench_index(data_dir: str, names: list[str]) -> list[dict]:
    """Index reading (no image decoding) of prepared datasets."""
    from tfmelanoma.datasets import read_index

    rows = []
    for name in names:
        read_index(name, data_dir)  # warm-up: TF/TFDS imports, file cache
        start, wall = time.process_time(), time.perf_counter()
        frame = read_index(name, data_dir)
        cpu, wall = time.process_time() - start, time.perf_counter() - wall
        rows.append({"dataset": name, "rows": len(frame), "cpu_s": cpu, "wall_s": wall,
                     "rows_per_cpu_s": len(frame) / cpu})  # fmt: skip
    return rows


def _slope(rows: list[dict], key: str) -> float:
    xs = np.log([r["n"] for r in rows if np.isfinite(r[key])])
    ys = np.log([r[key] for r in rows if np.isfinite(r[key])])
    return float(np.polyfit(xs, ys, 1)[0]) if len(xs) > 1 else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,2000,5000,10000,20000,50000")
    p.add_argument("--hash-images", type=int, default=200)
    p.add_argument("--max-distance", type=int, default=dedup.DEFAULT_MAX_DISTANCE)
    p.add_argument("--json", default=None)
    p.add_argument("--data-dir", default=None, help="also time index reading of --datasets")
    p.add_argument("--datasets", default="", help="comma-separated prepared dataset names")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    hashing = bench_hashing(args.hash_images)
    matching = bench_matching(sizes, args.max_distance)
    index = bench_index(args.data_dir, args.datasets.split(",")) if args.data_dir else []
    print("Hashing (decode + SHA-256 + pHash, one core, process CPU time):")
    print(pd.DataFrame(hashing).to_string(index=False, float_format="%.2f"))
    if index:
        print("\nIndex reading (images left encoded):")
        print(pd.DataFrame(index).to_string(index=False, float_format="%.2f"))
    print(f"\npHash matching, max_distance={args.max_distance}, CPU seconds (best of 3 / brute "
          "force once):")  # fmt: skip
    print(pd.DataFrame(matching).to_string(index=False, float_format="%.4f"))
    slopes = {k: _slope(matching, k) for k in
              ("phash_mih_s", "phash_bruteforce_s", "match_pairs_all_rules_s")}  # fmt: skip
    print("\nfitted exponent (time ~ n^k):", {k: round(v, 2) for k, v in slopes.items()})
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"hashing": hashing, "index": index, "matching": matching, "exponents": slopes},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
