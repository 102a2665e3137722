"""The pixel check behind de-duplication: copies confirmed, look-alike lesions rejected.

Synthetic images copy the failure seen on real data (a small lesion on pale skin inside a dark
dermatoscope circle: different lesions whose pHashes collide); the hand-labelled real pairs in
`data/dedup_labelled_pairs.csv` are checked when ../shared/data is there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tfmelanoma.datasets import verify
from tfmelanoma.datasets.combination import MergeOptions, plan

LABELS = Path(__file__).parent / "data" / "dedup_labelled_pairs.csv"


def _lesion(seed: int, size: int = 256) -> np.ndarray:
    """A textured brown blob on pale, slightly grainy skin, inside a dark circular edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    skin = np.array([225, 200, 185], float) + rng.normal(0, 6, (size, size, 1))
    cy, cx = rng.uniform(-0.08, 0.08, 2)
    radius = 0.12 + 0.06 * np.cos(np.arctan2(yy - cy, xx - cx) * rng.integers(2, 5))
    blob = np.hypot(yy - cy, xx - cx) < radius
    texture = Image.fromarray((rng.random((24, 24)) * 255).astype(np.uint8)).resize((size, size))
    dark = 0.4 + 0.4 * np.asarray(texture, float)[..., None] / 255
    image = np.where(blob[..., None], np.array([120, 70, 50], float) * dark, skin)
    image[np.hypot(yy, xx) > 0.48] = 10  # the dermatoscope's dark edge
    return np.clip(image, 0, 255).astype(np.uint8)


def _prints(image: np.ndarray) -> verify.Fingerprint:
    return verify.fingerprint(image)


def test_copies_are_confirmed():
    a = _lesion(1)
    recoloured = np.clip(a.astype(float) * [0.8, 0.9, 1.1] + 12, 0, 255).astype(np.uint8)
    resized = np.asarray(Image.fromarray(a).resize((600, 450)))  # stretched, as ISIC 2017 did
    shifted = np.roll(a, (9, -7), axis=(0, 1))
    for copy in (a, recoloured, resized, shifted):
        v = verify.verify(_prints(a), _prints(copy))
        assert v.confirmed, v


def test_different_lesions_on_the_same_dermatoscope_are_rejected():
    for seed in range(2, 6):
        v = verify.verify(_prints(_lesion(1)), _prints(_lesion(seed)))
        assert not v.confirmed, (seed, v)


def _index(names, phash="8f0f0f0f0f0f0f0f"):
    return pd.DataFrame(
        {
            "dataset": [n.split("/")[0] for n in names],
            "split": "train",
            "position": range(len(names)),
            "image_id": [n.split("/")[1] for n in names],
            "isic_id": "",
            "source": "x",
            "label": 0,
            "harmonised_diagnosis": 8,
            "diagnosis": "x",
            "patient_id": "",
            "lesion_id": "",
            "image_type": "dermoscopic",
            "sha256": [n.encode().hex().ljust(64, "0") for n in names],
            "phash": phash,  # every pHash collides
            "height": 256,
            "width": 256,
        }
    )


def test_merge_removes_only_confirmed_pairs_and_lists_the_rejected():
    # c: a shifted copy of a (no aligned texture: the keypoints confirm it); b: another lesion.
    images = {"a": _lesion(1), "b": _lesion(7), "c": np.roll(_lesion(1), (9, -7), axis=(0, 1))}
    test = _index(["t/a"])
    pool = _index(["p/b", "p/c"]).assign(split="validation")
    roles = {"t": {"train": "test"}, "p": {"validation": "validation"}}
    index = pd.concat([test.assign(split="train"), pool], ignore_index=True)
    index.loc[index["dataset"] == "p", "position"] = [0, 1]
    by_key = {
        ("t", "train", 0): images["a"],
        ("p", "validation", 0): images["b"],
        ("p", "validation", 1): images["c"],
    }
    check = verify.PixelCheck(read=lambda rows: by_key)
    out, report = plan(index, roles, ["p"], "t", MergeOptions(dedup_train=False), confirm=check)
    assert set(report.rejected["image_id"]) == {"b"}
    assert set(report.removed["image_id"]) == {"c"}
    assert report.removed["inliers"].iloc[0] >= verify.MIN_INLIERS
    assert set(out["train"]["image_id"]) | set(out["validation"]["image_id"]) == {"b"}


@pytest.mark.realdata
def test_hand_labelled_real_pairs(shared_data):
    from tfds_builders import common

    pairs = pd.read_csv(LABELS)
    cache = {}

    def get(rel):
        if rel not in cache:
            cache[rel] = verify.fingerprint(
                common.read_image(shared_data / rel, max_side=512).array
            )
        return cache[rel]

    wrong = []
    for a, b, verdict in zip(pairs["a"], pairs["b"], pairs["verdict"], strict=True):
        v = verify.verify(get(a), get(b))
        if v.confirmed != (verdict in ("copy", "same_lesion")):
            wrong.append((a, b, verdict, v))
    assert not wrong, wrong
    assert (pairs["verdict"] == "different").sum() >= 20
