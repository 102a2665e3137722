"""Real data: ISIC Archive UDA-1 vs ISIC 2017 share 456 ISIC ids; found by id and by content.

Both datasets are prepared through their TFDS builders from ../shared/data (slow, ~1-2 min on two
cores). The expected overlap is computed here from the file names alone, independently of the
code under test.
"""

from __future__ import annotations

import pandas as pd
import pytest
import tensorflow_datasets as tfds

from tfmelanoma.datasets import dedup, load_combination, read_index, verify
from tfmelanoma.datasets.report import cross_dataset_overlaps

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

ARCHIVE, ISIC2017 = "isic_archive/resized_512", "isic2017/classification_512"


@pytest.fixture(scope="module")
def real_dir(shared_data, tmp_path_factory):
    import tfds_builders  # noqa: F401 - registers the builders

    data_dir = tmp_path_factory.mktemp("ds4_real")
    for name, manual in [(ARCHIVE, "isic_archive_uda1"), (ISIC2017, "isic2017")]:
        builder = tfds.builder(name, data_dir=str(data_dir), file_format="array_record")
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(shared_data / manual))
        )
    return str(data_dir)


@pytest.fixture(scope="module")
def shared_ids(shared_data) -> set[str]:
    archive = {p.stem for p in (shared_data / "isic_archive_uda1" / "images").glob("ISIC_*")}
    train = {p.stem for p in (shared_data / "isic2017" / "ISIC-2017_Training_Data").glob("ISIC_*")}
    return archive & train


def test_456_shared_ids_found_by_id_and_by_content(real_dir, shared_ids):
    assert len(shared_ids) == 456
    index = pd.concat([read_index(ARCHIVE, real_dir), read_index(ISIC2017, real_dir)])
    cross = cross_dataset_overlaps(index).set_index(["a", "b", "rule"])
    key = (f"{ISIC2017}:train", f"{ARCHIVE}:train")  # pairs are ordered by name
    assert cross.loc[(*key, "isic_id"), ["rows_a", "rows_b", "pairs"]].tolist() == [456] * 3
    # Content: every one of the 456 pairs is within the pHash threshold, although the archive
    # copy is downscaled to 600 px and the 2017 copy stretched to 256 x 256 and re-encoded.
    archive = index[index["dataset"] == ARCHIVE].reset_index(drop=True)
    train17 = index[(index["dataset"] == ISIC2017) & (index["split"] == "train")]
    train17 = train17.reset_index(drop=True)
    pairs = dedup.match_pairs(archive, train17, rules=["phash"])
    by_content = {
        (archive["image_id"][a], train17["image_id"][b])
        for a, b in zip(pairs["left"], pairs["right"], strict=True)
    }
    assert {(i, i) for i in shared_ids} <= by_content
    # The pixel check confirms every one of them (recall of the second check on real copies).
    checked = verify.PixelCheck(real_dir)(archive, train17, pairs, "test_overlap")
    confirmed = {
        (archive["image_id"][a], train17["image_id"][b])
        for a, b in zip(checked["left"], checked["right"], strict=True)
    }
    assert {(i, i) for i in shared_ids} <= confirmed
    # Extra content matches (same lesion re-imaged under another id) stay few.
    assert len(by_content) - 456 < 25
    assert cross.loc[(*key, "phash"), "rows_b"] >= 456
    # Not pixel-identical: no sha256 match, as expected for resized copies.
    assert (*key, "sha256") not in cross.index


def test_held_out_archive_test_never_leaks_into_isic2017_training(real_dir, shared_ids):
    # The archive is trained on too, so its test set is a held-out part (a dataset that is not
    # trained on is an external test set, used whole: next test).
    comb = load_combination([ISIC2017, ARCHIVE], ARCHIVE, data_dir=real_dir, seed=0)
    assert comb.report.test_source == "held_out"
    test_ids = set(comb.test.frame["image_id"])
    assert 100 <= len(test_ids) <= 125  # 20 % of 557
    kept = pd.concat([comb.train.frame, comb.validation.frame])
    assert not set(kept["isic_id"]) & test_ids
    removed = comb.report.removed
    removed = removed[removed["stage"] == "test_overlap"]
    by_id = set(removed.loc[removed["rule"] == "isic_id", "image_id"])
    assert by_id == test_ids & shared_ids
    overlaps = comb.report.overlaps.set_index(["stage", "rule"])
    # The content rule finds the same images on its own.
    assert overlaps.loc[("test_overlap", "phash"), "rows"] >= len(by_id)
    # What still matches is only pHash look-alikes that the pixel check rejected (and lists).
    left = dedup.match_pairs(kept.reset_index(drop=True), comb.test.frame)
    assert set(left["rule"]) <= {"phash"}
    rejected = comb.report.rejected
    listed = set(zip(rejected["image_id"], rejected["matched_image_id"], strict=True))
    for a, b in zip(left["left"], left["right"], strict=True):
        assert (kept["image_id"].iloc[a], comb.test.frame["image_id"].iloc[b]) in listed


def test_whole_archive_as_external_test_set(real_dir, shared_ids):
    comb = load_combination([ISIC2017], ARCHIVE, data_dir=real_dir, seed=0)
    assert comb.report.test_source == "whole" and len(comb.test) == 557
    removed = comb.report.removed
    assert set(removed.loc[removed["rule"] == "isic_id", "image_id"]) == shared_ids
    # Every shared image is also matched by content and confirmed on the pixels.
    overlaps = comb.report.overlaps.set_index(["stage", "rule"])
    assert overlaps.loc[("test_overlap", "phash"), "rows"] >= len(shared_ids)
    assert len(comb.report.rejected) < 25  # look-alike lesions kept, listed for the audit


def test_made_splits_stratified_and_deterministic(real_dir):
    comb = load_combination([ARCHIVE], ARCHIVE, data_dir=real_dir, seed=0)
    again = load_combination([ARCHIVE], ARCHIVE, data_dir=real_dir, seed=0)
    everything = read_index(ARCHIVE, real_dir)
    whole = everything["label"].mean()
    for name in ("train", "validation", "test"):
        view = comb.split(name)
        assert abs(view.labels.mean() - whole) < 0.02, (name, view.labels.mean(), whole)
        assert list(again.split(name).frame["image_id"]) == list(view.frame["image_id"])
    assert len(comb.train) + len(comb.validation) + len(comb.test) + len(
        comb.report.removed
    ) == len(everything)
