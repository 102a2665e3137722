"""Unit tests of the matching rules and the multi-index pHash join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfmelanoma.datasets import dedup


def _planted_hashes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**64, n, dtype=np.uint64)
    for i in range(0, n - 1, 7):  # near copies with 0..15 flipped bits
        bits = rng.choice(64, rng.integers(0, 16), replace=False)
        x[i + 1] = x[i] ^ np.uint64(sum(1 << int(b) for b in bits))
    return x


def _pairs(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(map(tuple, frame[["left", "right"]].to_numpy().tolist()))


@pytest.mark.parametrize("max_distance", [0, 3, 4, 6, 7, 10, 12, 13])
def test_phash_pairs_equals_bruteforce(max_distance):
    x = _planted_hashes(1500, seed=max_distance)
    fast = dedup.phash_pairs(x, max_distance=max_distance)
    slow = dedup.phash_pairs_bruteforce(x, max_distance=max_distance)
    assert _pairs(fast) == _pairs(slow)
    assert len(fast) > 0
    assert (fast["distance"] <= max_distance).all()
    # Two-sided join too.
    fast2 = dedup.phash_pairs(x[:600], x[400:], max_distance=max_distance)
    slow2 = dedup.phash_pairs_bruteforce(x[:600], x[400:], max_distance=max_distance)
    assert _pairs(fast2) == _pairs(slow2)


def test_phash_pairs_rejects_bad_threshold():
    with pytest.raises(ValueError, match="max_distance"):
        dedup.phash_pairs(np.zeros(2, np.uint64), max_distance=64)


def test_phash_to_int_names_bad_value():
    with pytest.raises(ValueError, match="'xyz'"):
        dedup.phash_to_int(["ffffffffffffffff", "xyz"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ISIC_0000123", "ISIC_0000123"),
        ("isic_0000123_downsampled.jpg", "ISIC_0000123"),
        ("ISIC-0000123", "ISIC_0000123"),
        ("copy of ISIC_0012345 (2).png", "ISIC_0012345"),
        ("IMD003", ""),
        ("", ""),
    ],
)
def test_normalise_isic_id(raw, expected):
    assert dedup.normalise_isic_id(raw) == expected


def test_group_key_isic_patients_are_global_others_per_dataset():
    assert dedup.group_key("isic2020", "patient", "IP_123") == dedup.group_key(
        "isic_archive", "patient", "IP_123"
    )
    assert dedup.group_key("pad_ufes_20", "patient", "PAT_1") != dedup.group_key(
        "derm7pt", "patient", "PAT_1"
    )
    assert dedup.group_key("x", "lesion", "") == ""


def _frame(rows):
    cols = ["dataset", "image_id", "sha256", "phash", "patient_id", "lesion_id"]
    return pd.DataFrame(rows, columns=cols)


def test_match_pairs_each_rule_and_attribution():
    left = _frame(
        [
            ("a", "ISIC_0000001", "s1", "0000000000000000", "", ""),  # isic id of right[0]
            ("a", "img2", "s2", "ffffffffffffffff", "", ""),  # sha of right[1]
            ("a", "img3", "s3", "00000000000000ff", "", ""),  # 3 bits from right[2]'s phash
            ("a", "img4", "s4", "0f0f0f0f0f0f0f0f", "P1", ""),  # patient of right[3]
            ("a", "img5", "s5", "f0f0f0f0f0f0f0f0", "", "L9"),  # lesion of right[3]
            ("a", "img6", "s6", "123456789abcdef0", "P2", "L2"),  # nothing
        ]
    )
    right = _frame(
        [
            ("a", "ISIC_0000001_resized.jpg", "t1", "aaaaaaaaaaaaaaaa", "", ""),
            ("b", "other", "s2", "5555555555555555", "", ""),
            ("b", "other2", "t3", "000000000000001f", "", ""),
            ("a", "other3", "t4", "3333333333333333", "P1", "L9"),
        ]
    )
    pairs = dedup.match_pairs(left, right, max_distance=4)
    got = {(r.left, r.right, r.rule) for r in pairs.itertuples()}
    assert got == {
        (0, 0, "isic_id"),
        (1, 1, "sha256"),
        (2, 2, "phash"),
        (3, 3, "patient"),
        (4, 3, "lesion"),
    }
    first = dedup.attribute(pairs)
    assert first.to_dict() == {0: "isic_id", 1: "sha256", 2: "phash", 3: "patient", 4: "lesion"}
    # Per-dataset patient ids: the same "P1" in dataset b would not match.
    right.loc[3, "dataset"] = "b"
    assert 3 not in dedup.match_pairs(left, right, rules=["patient"])["left"].tolist()


def test_match_pairs_unknown_rule():
    with pytest.raises(ValueError, match="unknown de-dup rule"):
        dedup.match_pairs(_frame([]), None, rules=["colour"])
