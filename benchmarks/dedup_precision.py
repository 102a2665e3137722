"""Precision and recall of duplicate detection (pHash candidates + `verify`) on labelled pairs.

Usage::

    python benchmarks/dedup_precision.py [--max-distance 4] [--sheet out.png] [--json out.json]

Positives: the 456 ISIC Archive UDA-1 images that ISIC 2017 training holds under the same ISIC id
(600 px copies vs 256 x 256 stretched, re-encoded ones), found from the file names alone.
Hand-labelled pairs: `tests/datasets/data/dedup_labelled_pairs.csv`, pHash candidates among
ISIC 2017 train/validation, UDA-1 and Kaggle fanconic that a person looked at side by side
(`copy`, `same_lesion`: another photograph of the same lesion, `different`). Images are read as
the `*_512` builder configs store them (`tfds_builders.common.read_image(max_side=512)`), so the
scores are those the merge computes. Needs ../shared/data (or $TFMELANOMA_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tfds_builders import common  # noqa: E402
from tfmelanoma.datasets import dedup, verify  # noqa: E402

SHARED = Path(os.environ.get("TFMELANOMA_SHARED_DATA", ROOT.parent / "shared" / "data"))
LABELS = ROOT / "tests" / "datasets" / "data" / "dedup_labelled_pairs.csv"


def _read(rel: str) -> tuple[np.ndarray, str]:
    image = common.read_image(SHARED / rel, max_side=512)
    return image.array, image.phash


def labelled_pairs() -> pd.DataFrame:
    """The 456 id-matched UDA-1 / ISIC 2017 pairs (verdict copy) plus the hand-labelled ones."""
    archive = {p.stem for p in (SHARED / "isic_archive_uda1" / "images").glob("ISIC_*.jpg")}
    train_dir = SHARED / "isic2017" / "ISIC-2017_Training_Data"
    train = {p.stem for p in train_dir.glob("ISIC_*.jpg")}
    known = pd.DataFrame(
        {
            "a": [f"isic_archive_uda1/images/{i}.jpg" for i in sorted(archive & train)],
            "b": [f"isic2017/ISIC-2017_Training_Data/{i}.jpg" for i in sorted(archive & train)],
            "verdict": "copy",
            "set": "uda1_isic2017_ids",
        }
    )
    hand = pd.read_csv(LABELS).assign(set="hand_labelled")
    return pd.concat([known, hand[["a", "b", "verdict", "set"]]], ignore_index=True)


def score(pairs: pd.DataFrame, max_distance: int) -> pd.DataFrame:
    """Adds pHash distance, both verify scores and the decisions of pHash alone and of both."""
    cache: dict[str, tuple[verify.Fingerprint, int]] = {}

    def get(rel):
        if rel not in cache:
            array, phash = _read(rel)
            cache[rel] = (verify.fingerprint(array), int(phash, 16))
        return cache[rel]

    rows = []
    for a, b in zip(pairs["a"], pairs["b"], strict=True):
        (fa, ha), (fb, hb) = get(a), get(b)
        distance = int(dedup.hamming(np.array([ha], np.uint64), np.array([hb], np.uint64))[0])
        v = verify.verify(fa, fb)
        rows.append(
            {
                "distance": distance,
                "texture": v.texture,
                "inliers": v.inliers,
                "phash_only": distance <= max_distance,
                "verified": distance <= max_distance and v.confirmed,
            }
        )
    return pd.concat([pairs.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def precision_recall(scored: pd.DataFrame, decision: str, positive: set[str]) -> dict:
    truth = scored["verdict"].isin(positive)
    said = scored[decision]
    tp, fp, fn = int((said & truth).sum()), int((said & ~truth).sum()), int((~said & truth).sum())
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(tp / (tp + fp), 4) if tp + fp else float("nan"),
        "recall": round(tp / (tp + fn), 4) if tp + fn else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-distance", type=int, default=dedup.DEFAULT_MAX_DISTANCE)
    p.add_argument("--json", default=None, help="write the scores and results here")
    args = p.parse_args(argv)
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED}", file=sys.stderr)
        return 2
    scored = score(labelled_pairs(), args.max_distance)
    results = {}
    subsets = {"all": scored, "hand_labelled": scored[scored["set"] == "hand_labelled"]}
    positives = {"copy": {"copy"}, "copy+same_lesion": {"copy", "same_lesion"}}
    for subset, frame in subsets.items():
        for name, positive in positives.items():
            for decision in ("phash_only", "verified"):
                key = f"{subset} / {name} / {decision}"
                results[key] = precision_recall(frame, decision, positive)
    print(scored.groupby(["set", "verdict"]).agg(
        pairs=("a", "size"), phash_only=("phash_only", "sum"), verified=("verified", "sum"),
        texture_min=("texture", "min"), texture_max=("texture", "max"),
        inliers_max=("inliers", "max"),
    ).to_string())  # fmt: skip
    print(f"\nmax_distance={args.max_distance}, MIN_TEXTURE={verify.MIN_TEXTURE}, "
          f"MIN_INLIERS={verify.MIN_INLIERS}")  # fmt: skip
    print(pd.DataFrame(results).T.to_string())
    wrong = scored[scored["verified"] != scored["verdict"].isin({"copy", "same_lesion"})]
    if len(wrong):
        print("\ndisagreements:\n" + wrong.to_string())
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "pairs": scored.to_dict("records")}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
