"""End to end on real TFDS datasets (tiny, hand-made): planted leaks, splits, tf.data, data_source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfmelanoma.cli import USER_ERRORS
from tfmelanoma.datasets import dedup, get_builder, load_combination, load_split, read_index, report
from tfmelanoma.datasets.__main__ import main
from tfmelanoma.errors import DatasetError, DatasetNotPreparedError, TfmelanomaError

ALPHA, BETA = "ds4_tiny/alpha", "ds4_tiny/beta"


@pytest.fixture(scope="module")
def comb(tiny_data_dir):
    return load_combination([ALPHA, BETA], ALPHA, data_dir=str(tiny_data_dir), seed=0)


def test_planted_images_are_all_distinct_otherwise(tiny_data_dir):
    # Precondition of "nothing else removed": unplanted images are far apart in pHash.
    from tfmelanoma.datasets import read_index

    index = pd.concat([read_index(ALPHA, str(tiny_data_dir)), read_index(BETA, str(tiny_data_dir))])
    hashes = dedup.phash_to_int(index["phash"])
    pairs = dedup.phash_pairs(hashes, max_distance=12)
    # Only the 5 planted copies: exact, JPEG and resized copies of test images, the copy of a
    # validation image and the resized copy of an alpha training image.
    assert len(pairs) == 5


def test_every_planted_leak_caught_by_its_rule_nothing_else(comb, planted):
    removed = comb.report.removed
    got = {r.image_id: (r.stage, r.rule) for r in removed.itertuples()}
    assert got == planted
    kept_ids = set(comb.train.frame["image_id"]) | set(comb.validation.frame["image_id"])
    assert not kept_ids & set(planted)
    # Counts: 12 + 5 alpha train/val, 14 + 7 beta, minus the 7 removed; test is alpha's official.
    assert len(comb.test) == 6 and set(comb.test.frame["split"]) == {"test"}
    assert len(comb.train) + len(comb.validation) == 12 + 5 + 14 + 7 - 7
    assert comb.report.test_source == "official"
    overlaps = comb.report.overlaps.set_index(["stage", "rule"])
    assert overlaps.loc[("test_overlap", "phash"), "removed"] == 2
    assert overlaps.loc[("test_overlap", "sha256"), "rows"] == 1


def test_splits_patient_disjoint(comb):
    frames = {n: comb.split(n).frame for n in ("train", "validation", "test")}
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        assert dedup.match_pairs(frames[a], frames[b]).empty, (a, b)
    # beta's patients (B0..B6, two images each) are never split across train/validation.
    beta = pd.concat([frames["train"], frames["validation"]])
    beta = beta[beta["dataset"] == BETA]
    per_patient = beta.groupby("patient_id")["image_id"].apply(set)
    val_ids = set(frames["validation"]["image_id"])
    for ids in per_patient:
        assert len({i in val_ids for i in ids}) == 1, ids


def test_deterministic(tiny_data_dir, comb):
    again = load_combination([ALPHA, BETA], ALPHA, data_dir=str(tiny_data_dir), seed=0)
    for name in ("train", "validation", "test"):
        assert list(again.split(name).frame["image_id"]) == list(comb.split(name).frame["image_id"])


def test_tf_dataset_and_data_source_yield_the_frame_rows(comb):
    for name in ("train", "test"):
        view = comb.split(name)
        ids = [ex["image_id"].decode() for ex in view.as_tf_dataset().as_numpy_iterator()]
        assert ids == list(view.frame["image_id"])
        source = view.as_data_source()
        assert len(source) == len(view)
        ex = source[len(source) - 1]
        assert ex["image_id"].decode() == view.frame["image_id"].iloc[-1]
        assert ex["image"].dtype == np.uint8 and ex["image"].ndim == 3
        assert "segmentation_mask" not in ex
    first = next(iter(comb.as_tf_dataset("train")))
    assert first["image"].dtype.name == "uint8" and first["image"].shape.rank == 3


def test_oversampling_balances_classes(comb):
    labels = [int(ex["label"]) for ex in comb.as_tf_dataset("train", oversample=True, seed=1)]
    counts = np.bincount(labels)
    assert counts[0] == counts[1] == np.bincount(comb.train.labels).max()
    src = comb.as_data_source("train", oversample=True, seed=1)
    assert np.bincount([int(src[i]["label"]) for i in range(len(src))]).tolist() == counts.tolist()
    weights = comb.class_weights("inverse")
    n = np.bincount(comb.train.labels)
    assert weights[0] * n[0] == pytest.approx(weights[1] * n[1])


def test_held_out_test_matches_load_split(tiny_data_dir):
    # Beta is trained on too: an external test set (not trained on) would be used whole.
    c = load_combination([ALPHA, BETA], BETA, data_dir=str(tiny_data_dir), seed=3)
    assert c.report.test_source == "held_out"
    assert 0 < len(c.test) < 21
    view = load_split(BETA, "test", data_dir=str(tiny_data_dir), seed=3)
    assert list(view.frame["image_id"]) == list(c.test.frame["image_id"])
    # Beta's held-out images (and their duplicates in alpha) never reach alpha's train/val.
    kept = pd.concat([c.train.frame, c.validation.frame])
    assert dedup.match_pairs(kept, c.test.frame).empty


def test_report_cli_writes_tables_and_chart(tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["report", "--train", f"{ALPHA},{BETA}", "--test", ALPHA, "--data-dir",
            str(tiny_data_dir), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "test_overlap" in printed and "melanoma" in printed
    for name in ("counts.csv", "removals.csv", "removed.csv", "splits.csv", "report.md",
                 "report.png", "patient_groups.csv", "image_sizes.csv",
                 "cross_dataset_overlaps.csv"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    counts = pd.read_csv(out / "counts.csv")
    assert counts["total"].sum() == 12 + 5 + 6 + 14 + 7 - 7
    removals = pd.read_csv(out / "removals.csv")
    assert removals["removed"].sum() == 7
    sizes = pd.read_csv(out / "image_sizes.csv").set_index("dataset")
    # Kept beta images are all 64 x 64 (the 40 and 48 px planted copies were removed).
    assert sizes.loc[BETA, ["height_min", "width_max"]].tolist() == [64, 64]
    assert sizes.loc[BETA, "long<=256"] == sizes.loc[BETA, "images"] == 14
    cross = pd.read_csv(out / "cross_dataset_overlaps.csv")
    isic = cross[cross["rule"] == "isic_id"]
    assert isic["rows_a"].sum() == 1


def test_unknown_or_unprepared_dataset_is_a_clear_error(tiny_data_dir, capsys):
    argv = ["report", "--train", "no_such_dataset", "--data-dir", str(tiny_data_dir), "--out", "x"]
    assert main(argv) == 2
    assert "no_such_dataset" in capsys.readouterr().err


def test_tfrecord_prepared_datasets_give_the_same_splits(tiny_tfrecord_dir, comb):
    c = load_combination([ALPHA, BETA], ALPHA, data_dir=str(tiny_tfrecord_dir), seed=0)
    for name in ("train", "validation", "test"):
        assert sorted(c.split(name).frame["image_id"]) == sorted(comb.split(name).frame["image_id"])
        view = c.split(name)
        ids = [ex["image_id"].decode() for ex in view.as_tf_dataset().as_numpy_iterator()]
        assert ids == list(view.frame["image_id"])
    assert (
        len(list(c.as_tf_dataset("train", oversample=True)))
        == 2 * np.bincount(c.train.labels).max()
    )
    with pytest.raises(ValueError, match="ArrayRecord"):
        c.as_data_source("train")[0]


def test_index_cache_is_reused_and_invalidated(tiny_data_dir, monkeypatch):
    from tfmelanoma.datasets import index as index_lib

    fresh = index_lib.read_index(BETA, str(tiny_data_dir), cache=False)
    index_lib.read_index(BETA, str(tiny_data_dir))  # writes (or refreshes) the cache
    builder = get_builder(BETA, str(tiny_data_dir), prepare=False)
    path = index_lib._cache_path(builder, "train")
    assert path.is_file()

    def no_records(*args, **kwargs):
        raise AssertionError("records read although the cache is valid")

    with monkeypatch.context() as m:
        m.setattr(index_lib, "iter_undecoded", no_records)
        cached = index_lib.read_index(BETA, str(tiny_data_dir))
    pd.testing.assert_frame_equal(cached, fresh)
    # A cache written for other data (different fingerprint) is ignored and rewritten.
    path.write_text(path.read_text().replace(index_lib._fingerprint(builder), "0" * 16))
    with monkeypatch.context() as m:
        m.setattr(index_lib, "iter_undecoded", no_records)
        with pytest.raises(AssertionError, match="records read"):
            index_lib.read_index(BETA, str(tiny_data_dir))
    pd.testing.assert_frame_equal(index_lib.read_index(BETA, str(tiny_data_dir)), fresh)


def test_random_access_refuses_a_tfrecord_dataset_with_what_to_do(tiny_tfrecord_dir):
    with pytest.raises(DatasetError, match=r"is prepared as tfrecord.*--file_format array_record"):
        get_builder(ALPHA, str(tiny_tfrecord_dir), file_format="array_record")
    # tf.data reads TFRecord: the same call for it returns the prepared builder.
    assert get_builder(ALPHA, str(tiny_tfrecord_dir)).is_prepared()
    assert get_builder(ALPHA, str(tiny_tfrecord_dir), file_format="tfrecord").is_prepared()


def test_get_builder_errors_name_the_dataset_the_data_dir_and_what_to_do(tmp_path):
    with pytest.raises(DatasetError, match=r"unknown dataset 'isic2099'; datasets: sample, .*isic"):
        get_builder("isic2099", str(tmp_path))
    with pytest.raises(DatasetError, match=r"unknown dataset 'simpte'"):  # TFDS's, not ours
        get_builder("simpte", str(tmp_path))
    with pytest.raises(DatasetError, match=r"'isic2017/bogus' in .*: .*BuilderConfig bogus"):
        get_builder("isic2017/bogus", str(tmp_path))
    for kw in ({}, {"prepare": False}):  # no manual download given / only reading
        with pytest.raises(DatasetNotPreparedError) as err:
            get_builder("ph2", str(tmp_path), **kw)
        text = str(err.value)
        assert f"'ph2' is not prepared in {tmp_path}" in text and "tfds_builders/ph2/README" in text
        assert "--manual-dir <download folder>" in text and f"--data-dir {tmp_path}" in text
        assert isinstance(err.value, FileNotFoundError)  # what it was before it was typed
    with pytest.raises(DatasetNotPreparedError, match=r"'sample' is not prepared"):
        get_builder("sample", str(tmp_path), prepare=False)  # reading never prepares
    assert not (tmp_path / "isic_archive").exists()
    with pytest.raises(DatasetError, match=r"manual download folder .*nowhere does not exist"):
        get_builder("ph2", str(tmp_path), manual_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="file_format 'parquet'"):
        get_builder("sample", str(tmp_path), file_format="parquet")
    assert issubclass(DatasetError, TfmelanomaError) and issubclass(DatasetError, USER_ERRORS)


def test_several_test_sets_and_their_report(tiny_data_dir, tmp_path):
    c = load_combination([ALPHA], f"{ALPHA}:test,{BETA}", data_dir=str(tiny_data_dir))
    sets = c.test_sets
    assert list(sets) == [f"{ALPHA}:test", BETA]
    assert len(sets[BETA]) == len(read_index(BETA, str(tiny_data_dir)))  # external: whole
    assert sum(map(len, sets.values())) == len(c.test)
    table = report.test_set_table(c)
    assert list(table["source"]) == ["split", "whole"]
    assert table["removed"].sum() == c.report.removed_count("test_overlap")
    paths = report.write_report(c, tmp_path / "r")
    assert "Test sets, and the training rows removed" in paths["markdown"].read_text()
    # Every removal on a contact sheet: one pair per removal, images read back from TFDS.
    sheets = sorted((tmp_path / "r").glob("removed_*.png"))
    assert len(sheets) == -(-len(c.report.removed) // 40) >= 1


def test_phash_removals_are_checked_on_the_pixels(comb):
    removed = comb.report.removed
    by_phash = removed[removed["rule"] == "phash"]
    assert len(by_phash) and by_phash["texture"].notna().all()
    assert comb.report.rejected.empty  # the planted copies are copies


def test_auto_keeps_tf_data_for_datasets_prepared_as_tfrecord(
    tiny_data_dir, tiny_tfrecord_dir, monkeypatch
):
    # Beside an accelerator `auto` picks tf_cached on TensorFlow, which reads ArrayRecord only;
    # datasets a user prepared as TFRecord keep the tf.data pipeline instead of being refused.
    from tfmelanoma.config import load_config
    from tfmelanoma.training import inputs
    from tfmelanoma.training.tasks import ClassificationTask

    monkeypatch.setattr(inputs, "_accelerator", lambda: True)
    common = ["data.train=[ds4_tiny/alpha, ds4_tiny/beta]", "data.test=ds4_tiny/alpha"]
    record = load_config("smoke", [*common, f"data.data_dir={tiny_tfrecord_dir}"])
    assert inputs.tfrecord_datasets(record) == ["ds4_tiny/alpha", "ds4_tiny/beta"]
    assert ClassificationTask().resolve_pipeline(record) == "tf"
    array = load_config("smoke", [*common, f"data.data_dir={tiny_data_dir}"])
    assert inputs.tfrecord_datasets(array) == []
    assert ClassificationTask().resolve_pipeline(array) == "tf_cached"
    # An explicit choice is the user's.
    explicit = load_config("smoke", [*common, f"data.data_dir={tiny_tfrecord_dir}",
                                     "data.pipeline=tf_cached"])  # fmt: skip
    assert ClassificationTask().resolve_pipeline(explicit) == "tf_cached"
