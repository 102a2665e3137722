"""The merge step on synthetic index frames: removals by rule, grouped splits, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfmelanoma.datasets import MergeOptions, plan
from tfmelanoma.datasets.combination import TestSet, parse_tests
from tfmelanoma.datasets.index import INDEX_COLUMNS


def _rows(dataset, split, n, *, rng, melanoma=0.2, patients=None, prefix=None):
    """n unrelated rows with random hashes; `patients` images per patient on average."""
    prefix = prefix or f"{dataset}_{split}"
    rows = []
    for i in range(n):
        patient = f"{prefix}_p{i // patients}" if patients else ""
        rows.append(
            {
                "dataset": dataset,
                "split": split,
                "position": i,
                "image_id": f"{prefix}_{i:05d}",
                "isic_id": "",
                "source": dataset,
                "label": int(rng.random() < melanoma),
                "harmonised_diagnosis": 8,
                "diagnosis": "x",
                "patient_id": patient,
                "lesion_id": "",
                "image_type": "dermoscopic",
                "sha256": f"{rng.integers(2**63):016x}{rng.integers(2**63):016x}",
                "phash": f"{rng.integers(2**64, dtype=np.uint64):016x}",
                "height": 64,
                "width": 64,
            }
        )
    return pd.DataFrame(rows, columns=list(INDEX_COLUMNS))


def _flip(phash: str, bits: int) -> str:
    return f"{int(phash, 16) ^ ((1 << bits) - 1):016x}"


ROLES = {
    "alpha": {"train": "train", "validation": "validation", "test": "test"},
    "beta": {"train": "train"},
    "gamma": {"train": "train"},
}


@pytest.fixture
def planted():
    """alpha (train/val/test), beta (train only), gamma (train only) with planted leaks."""
    rng = np.random.default_rng(0)
    a_train = _rows("alpha", "train", 60, rng=rng)
    a_val = _rows("alpha", "validation", 20, rng=rng)
    a_test = _rows("alpha", "test", 30, rng=rng, patients=2)
    beta = _rows("beta", "train", 80, rng=rng)
    gamma = _rows("gamma", "train", 40, rng=rng)
    # Test leaks planted in beta (one per rule) and one val leak in gamma, one train dup.
    beta.loc[0, "image_id"] = "ISIC_0000042"
    a_test.loc[0, "image_id"] = "ISIC_0000042_downsampled"
    beta.loc[1, "sha256"] = a_test.loc[1, "sha256"]
    beta.loc[2, "phash"] = _flip(a_test.loc[2, "phash"], 4)
    beta.loc[3, "phash"] = _flip(a_test.loc[3, "phash"], 2)
    beta.loc[3, "image_id"] = "beta_resized_copy"
    a_train.loc[4, "lesion_id"] = "L1"
    a_test.loc[4, "lesion_id"] = "L1"
    a_train.loc[5, "patient_id"] = a_test.loc[6, "patient_id"]  # same patient, other image
    gamma.loc[0, "sha256"] = a_val.loc[0, "sha256"]  # train vs official validation
    gamma.loc[1, "phash"] = _flip(beta.loc[10, "phash"], 3)  # duplicate inside training
    index = pd.concat([a_train, a_val, a_test, beta, gamma], ignore_index=True)
    return index


def _ids(frame):
    return set(zip(frame["dataset"], frame["image_id"], strict=True))


def test_every_planted_leak_is_removed_by_its_rule_and_nothing_else(planted):
    out, report = plan(planted, ROLES, ["alpha", "beta", "gamma"], "alpha", MergeOptions())
    test = out["test"]
    assert len(test) == 30 and set(test["split"]) == {"test"}
    removed = report.removed.set_index("image_id")
    expected = {
        "ISIC_0000042": ("test_overlap", "isic_id"),
        "beta_train_00001": ("test_overlap", "sha256"),
        "beta_train_00002": ("test_overlap", "phash"),
        "beta_resized_copy": ("test_overlap", "phash"),
        "alpha_train_00004": ("test_overlap", "lesion"),
        "alpha_train_00005": ("test_overlap", "patient"),
    }
    got = {i: (r.stage, r.rule) for i, r in removed.iterrows() if r.stage == "test_overlap"}
    assert got == expected
    # gamma_0 duplicates alpha's official validation image: removed from train, val keeps it.
    assert removed.loc["gamma_train_00000", "stage"] == "validation_overlap"
    assert removed.loc["gamma_train_00000", "matched_image_id"] == "alpha_validation_00000"
    # Inside training, the first of the pair (beta, listed earlier) stays.
    n_train_dups = report.removed_count("train_duplicate")
    if "gamma_train_00001" in removed.index:
        assert removed.loc["gamma_train_00001", "stage"] in (
            "train_duplicate",
            "validation_overlap",
        )
    # Nothing else removed: the three stages account for exactly the planted rows.
    assert len(report.removed) == len(expected) + 1 + n_train_dups
    assert n_train_dups <= 1
    # Nothing leaks: no train/val row shares an id, hash, pHash (<=6) or patient with test.
    kept = pd.concat([out["train"], out["validation"]])
    assert not _ids(kept) & {(d, i) for d in ("alpha", "beta") for i in expected}
    total = len(planted) - len(test)
    assert len(out["train"]) + len(out["validation"]) + len(report.removed) == total
    # Official validation kept; beta/gamma got a made validation split.
    val = out["validation"]
    assert set(val.loc[val["dataset"] == "alpha", "split"]) == {"validation"}
    assert {"beta", "gamma"} <= set(val["dataset"])
    overlaps = report.overlaps.set_index(["stage", "rule"])
    assert overlaps.loc[("test_overlap", "phash"), "removed"] == 2
    assert overlaps.loc[("test_overlap", "isic_id"), "rows"] == 1


def test_no_duplicate_survives_across_splits(planted):
    from tfmelanoma.datasets import dedup

    out, _ = plan(planted, ROLES, ["alpha", "beta", "gamma"], "alpha", MergeOptions())
    for a, b in [("train", "test"), ("validation", "test"), ("train", "validation")]:
        pairs = dedup.match_pairs(out[a], out[b])
        assert pairs.empty, (a, b, pairs)
    assert dedup.match_pairs(out["train"], None, rules=dedup.CONTENT_RULES).empty


def test_held_out_test_for_dataset_without_test_split():
    rng = np.random.default_rng(1)
    index = pd.concat(
        [_rows("beta", "train", 500, rng=rng, patients=3), _rows("gamma", "train", 100, rng=rng)]
    )
    opts = MergeOptions(seed=3)
    out, report = plan(index, ROLES, ["beta", "gamma"], "beta", opts)
    assert report.test_source == "held_out"
    assert 0.15 < len(out["test"]) / 500 < 0.25
    # Same seed -> same test set; the test set does not depend on the other training datasets.
    out2, _ = plan(index[index["dataset"] == "beta"], ROLES, ["beta"], "beta", opts)
    assert list(out["test"]["image_id"]) == list(out2["test"]["image_id"])
    out3, _ = plan(index, ROLES, ["beta", "gamma"], "beta", MergeOptions(seed=4))
    assert list(out3["test"]["image_id"]) != list(out["test"]["image_id"])
    # Patient-disjoint.
    for a, b in [("train", "test"), ("validation", "test"), ("train", "validation")]:
        pa = set(out[a]["patient_id"]) - {""}
        pb = set(out[b]["patient_id"]) - {""}
        assert not pa & pb


def test_validation_split_grouped_stratified_deterministic():
    rng = np.random.default_rng(2)
    index = _rows("beta", "train", 3000, rng=rng, melanoma=0.18, patients=3)
    out, _ = plan(index, ROLES, ["beta"], None, MergeOptions(seed=7))
    again, _ = plan(
        index.sample(frac=1, random_state=1), ROLES, ["beta"], None, MergeOptions(seed=7)
    )
    assert sorted(out["validation"]["image_id"]) == sorted(again["validation"]["image_id"])
    whole = index["label"].mean()
    for name in ("train", "validation"):
        assert abs(out[name]["label"].mean() - whole) < 0.02, name
    assert abs(len(out["validation"]) / len(index) - 0.2) < 0.02
    assert not set(out["train"]["patient_id"]) & set(out["validation"]["patient_id"])


def test_official_test_splits_of_training_datasets_are_never_trained_on(planted):
    out, _ = plan(planted, ROLES, ["alpha", "beta"], "beta", MergeOptions())
    assert "test" not in set(out["train"]["split"]) | set(out["validation"]["split"])


def test_too_few_groups_is_a_clear_error():
    rng = np.random.default_rng(3)
    index = _rows("beta", "train", 3, rng=rng)
    with pytest.raises(ValueError, match="only 3 patient/lesion/image group"):
        plan(index, ROLES, ["beta"], None, MergeOptions())


def test_copies_of_fixed_training_images_stay_in_training():
    """A made-split dataset's copy of a training image (of a dataset with an official validation
    split) is never sent to validation, which would cost that training image; the copy is dropped
    as a training duplicate instead."""
    rng = np.random.default_rng(5)
    a_train = _rows("alpha", "train", 40, rng=rng)
    a_val = _rows("alpha", "validation", 10, rng=rng)
    beta = _rows("beta", "train", 60, rng=rng)
    for i in range(12):  # beta holds copies of 12 alpha training images
        beta.loc[i, "image_id"] = f"ISIC_{i:07d}"
        a_train.loc[i, "image_id"] = f"ISIC_{i:07d}"
    index = pd.concat([a_train, a_val, beta], ignore_index=True)
    for seed in range(5):
        out, report = plan(index, ROLES, ["alpha", "beta"], None, MergeOptions(seed=seed))
        assert report.removed_count("validation_overlap") == 0
        assert report.removed_count("train_duplicate") == 12
        assert set(report.removed["dataset"]) == {"beta"}
        assert len(out["train"][out["train"]["dataset"] == "alpha"]) == 40
        made = out["validation"][out["validation"]["dataset"] == "beta"]
        assert 8 <= len(made) <= 12  # 20 % of the 48 unlinked beta rows


def test_leakage_groups_link_patients_lesions_and_copies():
    from tfmelanoma.datasets.splits import leakage_groups

    rng = np.random.default_rng(6)
    frame = _rows("beta", "train", 6000, rng=rng)
    frame.loc[:4999, "patient_id"] = "one_patient"  # 5,000 images of one patient: one group
    frame.loc[5000, "lesion_id"] = frame.loc[5001, "lesion_id"] = "L"
    frame.loc[5002, "sha256"] = frame.loc[5003, "sha256"]
    frame.loc[5003, "patient_id"] = "one_patient"  # joins the big group through 5002's copy
    groups = leakage_groups(frame)
    assert len(set(groups[:5000])) == 1
    assert groups[5002] == groups[5003] == groups[0]
    assert groups[5000] == groups[5001] != groups[0]
    assert len(set(groups)) == 1 + 1 + (6000 - 5004)


# --- Several test sets: external datasets used whole, named splits, per-set removals ---


def test_parse_tests():
    assert parse_tests(None) == parse_tests("") == []
    assert parse_tests("ph2, derm7pt:test") == [TestSet("ph2"), TestSet("derm7pt", "test")]
    assert parse_tests("isic2017/classification_512:1.0.0") == [
        TestSet("isic2017/classification_512:1.0.0")
    ]  # a TFDS version, not a split
    assert parse_tests(["ph2:all"])[0].name == "ph2:all"
    with pytest.raises(ValueError, match="given twice"):
        parse_tests("ph2,ph2")


@pytest.fixture
def three_datasets():
    rng = np.random.default_rng(5)
    return pd.concat(
        [
            _rows("alpha", "train", 40, rng=rng),
            _rows("alpha", "validation", 10, rng=rng),
            _rows("alpha", "test", 12, rng=rng),
            _rows("beta", "train", 30, rng=rng),
            _rows("gamma", "train", 25, rng=rng),
        ],
        ignore_index=True,
    )


def test_external_test_sets_are_used_whole(three_datasets):
    # Gamma's first row is a copy of one of beta's: beta is trained on, gamma is a test set.
    index = three_datasets.copy()
    copy = index.index[index["dataset"] == "gamma"][0]
    beta_row = index.index[index["dataset"] == "beta"][3]
    index.loc[beta_row, ["sha256", "phash"]] = index.loc[copy, ["sha256", "phash"]].to_numpy()
    out, report = plan(index, ROLES, ["beta"], "alpha,gamma", MergeOptions())
    sizes = out["test"].groupby("test_set").size().to_dict()
    assert sizes == {"alpha": 62, "gamma": 25}  # every split of alpha, all of gamma
    assert report.test_sources == {"alpha": "whole", "gamma": "whole"}
    removed = report.removed[report.removed["stage"] == "test_overlap"]
    assert list(removed["matched_test_set"]) == ["gamma"]
    assert len(out["train"]) + len(out["validation"]) == 29


def test_named_split_and_training_dataset(three_datasets):
    out, report = plan(three_datasets, ROLES, ["alpha", "beta"], "alpha:test,gamma", MergeOptions())
    assert out["test"].groupby("test_set").size().to_dict() == {"alpha:test": 12, "gamma": 25}
    assert report.test_sources == {"alpha:test": "split", "gamma": "whole"}
    assert set(out["train"]["dataset"]) == {"alpha", "beta"}
    assert not set(out["train"]["split"]) & {"test"}
    # A training dataset named alone keeps its official test split.
    same, rep = plan(three_datasets, ROLES, ["alpha", "beta"], "alpha", MergeOptions())
    assert rep.test_source == "official" and len(same["test"]) == 12


def test_unknown_split_names_the_splits(three_datasets):
    with pytest.raises(ValueError, match=r"gamma has no split 'test'; its splits: \['train'\]"):
        plan(three_datasets, ROLES, ["beta"], "gamma:test", MergeOptions())


def test_excluded_images_and_their_matches_leave_training_and_validation(planted):
    index = planted.copy()
    b = index[index["dataset"] == "beta"].index
    g = index[index["dataset"] == "gamma"].index
    v = index[(index["dataset"] == "alpha") & (index["split"] == "validation")].index
    # The excluded image (an ISIC id in beta), another image of its patient in gamma, and its id
    # twin in alpha's validation under another file name.
    index.loc[b[20], ["image_id", "patient_id"]] = ["ISIC_0000777", "IP_0000777"]
    index.loc[g[5], "patient_id"] = "IP_0000777"
    index.loc[v[3], "image_id"] = "ISIC_0000777_downsampled"
    frames, report = plan(
        index, ROLES, ["alpha", "beta", "gamma"], "alpha",
        MergeOptions(exclude=("ISIC_0000777",)),
    )  # fmt: skip
    kept = _ids(frames["train"]) | _ids(frames["validation"])
    for row in (b[20], g[5], v[3]):
        assert (index.loc[row, "dataset"], index.loc[row, "image_id"]) not in kept
    removed = report.removed[report.removed["stage"] == "excluded"]
    assert sorted(removed["rule"]) == ["isic_id", "isic_id", "patient"]
    # Without the option the patient's other image stays, and the validation twin validates.
    frames, _ = plan(index, ROLES, ["alpha", "beta", "gamma"], "alpha", MergeOptions())
    kept = _ids(frames["train"]) | _ids(frames["validation"])
    assert ("gamma", index.loc[g[5], "image_id"]) in kept
    assert ("alpha", "ISIC_0000777_downsampled") in _ids(frames["validation"])
    with pytest.raises(ValueError, match=r"data.exclude: \['ISIC_0999999'\] are not image ids"):
        plan(index, ROLES, ["alpha"], "alpha", MergeOptions(exclude=("ISIC_0999999",)))
