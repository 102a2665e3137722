"""Tests of the isic2019 builder: dummy archive layout, bad inputs, the real CSVs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.isic2019 import isic2019_dataset_builder as b
from tfmelanoma import labels

DUMMY = Path(b.__file__).parent / "dummy_data"


class Isic2019ResizedTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = b.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["resized_512"]
    SPLITS = {"train": 4, "test": 2}
    SKIP_CHECKSUMS = True


class Isic2019OriginalTest(Isic2019ResizedTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["original"]


def _prepare(tmp_path: Path, manual_dir: Path, config="original", **kwargs):
    builder = b.Builder(data_dir=str(tmp_path / "data"), config=config, **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def _examples(builder, split="train") -> dict[str, dict]:
    return {e["image_id"].decode(): e for e in tfds.as_numpy(builder.as_dataset(split=split))}


def _copy_dummy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DUMMY, tmp_path / "manual"))


def _nothing_prepared(tmp_path: Path) -> bool:
    data = tmp_path / "data"
    return not data.exists() or not any(
        p.name == "dataset_info.json" or ".tfrecord" in p.name for p in data.rglob("*")
    )


def test_labels_and_metadata(tmp_path):
    builder = _prepare(tmp_path, DUMMY)
    train = _examples(builder)
    mel, nv, scc = (
        train["ISIC_0000017_downsampled"],
        train["ISIC_0000000"],
        train["ISIC_0024306"],
    )
    assert (mel["label"], mel["diagnosis"], mel["lesion_id"], mel["age"]) == (
        1,
        b"MEL",
        b"MSK4_0011183",
        common.UNKNOWN_AGE,
    )
    assert (nv["label"], nv["age"], nv["sex"], nv["anatomic_site"], nv["lesion_id"]) == (
        0,
        55,
        b"female",
        b"anterior torso",
        b"",
    )
    assert labels.HARMONISED_CLASSES[scc["harmonised_diagnosis"]] == "SCC"
    assert {e["source"] for e in train.values()} == {b"isic2019"}
    test = _examples(builder, "test")
    assert labels.HARMONISED_CLASSES[test["ISIC_0034321"]["harmonised_diagnosis"]] == "UNK"
    assert test["ISIC_0034322"]["label"] == 1 and test["ISIC_0034322"]["age"] == 70


def test_resized_config_keeps_original_hashes(tmp_path):
    small = common.LesionConfig(name="resized_16", max_side=16)
    resized = _examples(_prepare(tmp_path / "a", DUMMY, config=small))
    original = _examples(_prepare(tmp_path / "b", DUMMY))
    for image_id, ex in resized.items():
        assert max(ex["image"].shape[:2]) == 16
        assert ex["sha256"] == original[image_id]["sha256"]
        assert ex["phash"] == original[image_id]["phash"]


def test_without_test_ground_truth_there_is_no_test_split(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / b.TEST_GT).unlink()
    builder = _prepare(tmp_path, manual)
    assert set(builder.info.splits) == {"train"}


def test_missing_files_are_listed_together(tmp_path):
    # (An empty manual dir is refused by TFDS itself, with the instructions naming every file.)
    manual = tmp_path / "manual"
    manual.mkdir()
    shutil.copy(DUMMY / b.TRAIN_META, manual)
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(tmp_path, manual)
    assert "2 expected file(s) missing" in str(err.value)
    for name in (b.TRAIN_INPUT, b.TRAIN_GT):
        assert str(manual / name) in str(err.value)
    assert f"{manual / b.TRAIN_INPUT}.zip" in str(err.value)
    assert _nothing_prepared(tmp_path)


def test_corrupt_image_fails_naming_it_or_is_skipped(tmp_path):
    manual = _copy_dummy(tmp_path)
    bad = manual / b.TRAIN_INPUT / "ISIC_0024306.jpg"
    bad.write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(common.ImageReadError, match="ISIC_0024306.jpg"):
        _prepare(tmp_path, manual)
    assert _nothing_prepared(tmp_path)
    builder = _prepare(tmp_path, manual, skip_bad_files=True)
    assert builder.info.splits["train"].num_examples == 3
    assert builder.info.metadata["num_skipped"] == {"train": 1}
    reloaded = b.Builder(data_dir=str(tmp_path / "data"), config="original")
    assert "ISIC_0024306.jpg" in reloaded.info.metadata["skipped_files"]["train"][0]


def test_row_without_image_and_image_without_row(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / b.TRAIN_INPUT / "ISIC_0053470.jpg").unlink()
    with pytest.raises(common.ImageReadError, match="ISIC_0053470.jpg"):
        _prepare(tmp_path, manual)
    extra = manual / b.TRAIN_INPUT / "ISIC_9999999.jpg"
    shutil.copy(manual / b.TRAIN_INPUT / "ISIC_0000000.jpg", extra)
    with pytest.raises(common.UnlabeledImageError, match="ISIC_9999999.jpg"):
        _prepare(tmp_path, manual)
    assert _nothing_prepared(tmp_path)
    builder = _prepare(tmp_path, manual, skip_bad_files=True)
    assert builder.info.splits["train"].num_examples == 3
    assert builder.info.metadata["num_skipped"]["train"] == 2


def test_row_that_is_not_one_hot(tmp_path):
    manual = _copy_dummy(tmp_path)
    gt = manual / b.TRAIN_GT
    gt.write_text(gt.read_text().replace("ISIC_0000000,0.0,1.0", "ISIC_0000000,1.0,1.0"))
    with pytest.raises(b.GroundTruthError, match=r"Training_GroundTruth.csv:2: .*ISIC_0000000"):
        _prepare(tmp_path, manual)
    builder = _prepare(tmp_path, manual, skip_bad_files=True)
    assert builder.info.splits["train"].num_examples == 3


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def interrupt(row, max_side):
        calls.append(row.image_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(row, max_side)

    original = b.example_from_row
    monkeypatch.setattr(b, "example_from_row", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _prepare(tmp_path, DUMMY)
    assert len(calls) == 2
    assert _nothing_prepared(tmp_path)
    monkeypatch.setattr(b, "example_from_row", original)
    assert _prepare(tmp_path, DUMMY).info.splits["train"].num_examples == 4


def test_beam_generation_matches_python(tmp_path):
    apache_beam = pytest.importorskip("apache_beam", reason="apache-beam not installed (extra)")
    builder = b.Builder(data_dir=str(tmp_path / "x"), config="original", use_beam=True)
    assert isinstance(builder._generate_examples(split="train", rows=[]), apache_beam.PTransform)
    beam = _examples(_prepare(tmp_path / "beam", DUMMY, use_beam=True))
    python = _examples(_prepare(tmp_path / "py", DUMMY))
    assert beam.keys() == python.keys()
    for image_id, ex in python.items():
        assert beam[image_id]["sha256"] == ex["sha256"]
        assert beam[image_id]["label"] == ex["label"]


# ISIC 2019 class counts, read off the official CSV (pandas sum of each one-hot column).
TRAIN_COUNTS = {
    "MEL": 4522,
    "NV": 12875,
    "BCC": 3323,
    "AK": 867,
    "BKL": 2624,
    "DF": 239,
    "VASC": 253,
    "SCC": 628,
}


@pytest.mark.slow
def test_real_training_csvs(shared_data, tmp_path):
    folder = shared_data / "csv" / "ISIC2019"
    rows, errors = b.read_rows(tmp_path, folder / b.TRAIN_GT, folder / b.TRAIN_META)
    assert errors == {}
    assert len(rows) == 25_331
    counts = pd.Series([r.diagnosis for r in rows]).value_counts().to_dict()
    assert counts == TRAIN_COUNTS
    gt = pd.read_csv(folder / b.TRAIN_GT)
    assert counts == {c: int(n) for c, n in gt[list(b.CLASSES)].sum().items() if n}
    meta = pd.read_csv(folder / b.TRAIN_META)
    assert sum(bool(r.lesion_id) for r in rows) == meta.lesion_id.notna().sum() == 23_247
    assert sum(r.image_id.endswith("_downsampled") for r in rows) == 2_074
    assert {r.age for r in rows if not r.age} == {""} and sum(not r.age for r in rows) == 437
    for diagnosis in counts:
        assert labels.map_diagnosis("isic2019", diagnosis).harmonised == diagnosis
    binary = pd.Series([labels.map_diagnosis("isic2019", r.diagnosis).binary for r in rows])
    assert (binary == "melanoma").sum() == gt.MEL.sum() == 4_522


@pytest.mark.slow
def test_real_test_metadata(shared_data):
    meta = shared_data / "csv" / "ISIC2019" / b.TEST_META
    frame = pd.read_csv(meta)
    assert len(frame) == 8_238
    assert set(frame.columns) >= {"image", "age_approx", "anatom_site_general", "sex"}


def test_csv_with_bom_and_upper_case_extension(tmp_path):
    manual = _copy_dummy(tmp_path)
    gt = manual / b.TRAIN_GT
    gt.write_bytes(b"\xef\xbb\xbf" + gt.read_bytes())  # saved by a spreadsheet program
    image = manual / b.TRAIN_INPUT / "ISIC_0000000.jpg"
    image.rename(image.with_suffix(".JPG"))
    builder = _prepare(tmp_path, manual)
    assert builder.info.splits["train"].num_examples == 4
