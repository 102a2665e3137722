"""Tests of the isic2018 builder: Task 1 / Task 3 dummy layouts, bad inputs, the real HAM CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.isic2018 import isic2018_dataset_builder as b
from tfmelanoma import labels

DUMMY = Path(b.__file__).parent / "dummy_data"
T3_TRAIN, T3_TRAIN_GT = b.task3_names("train")
T1_TRAIN, T1_TRAIN_GT = b.task1_names("train")


class Isic2018ClassificationTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = b.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["classification_original"]
    SPLITS = {"train": 4, "validation": 2, "test": 2}
    SKIP_CHECKSUMS = True


class Isic2018Classification512Test(Isic2018ClassificationTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["classification_512"]


class Isic2018SegmentationTest(Isic2018ClassificationTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["segmentation_512"]
    SPLITS = {"train": 3, "validation": 1, "test": 2}


class Isic2018SegmentationOriginalTest(Isic2018SegmentationTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["segmentation_original"]


def _prepare(tmp_path: Path, manual_dir: Path, config="classification_original", **kwargs):
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


def test_task3_labels_and_ham_metadata(tmp_path):
    builder = _prepare(tmp_path, DUMMY)
    train = _examples(builder)
    mel, bkl = train["ISIC_0024310"], train["ISIC_0024312"]
    assert (mel["label"], mel["diagnosis"], mel["lesion_id"], mel["age"]) == (
        1,
        b"mel",
        b"HAM_0003350",
        60,
    )
    assert (mel["sex"], mel["anatomic_site"]) == (b"male", b"chest")
    assert (bkl["age"], bkl["sex"], bkl["anatomic_site"]) == (common.UNKNOWN_AGE, b"", b"")
    assert labels.HARMONISED_CLASSES[bkl["harmonised_diagnosis"]] == "BKL"
    validation = _examples(builder, "validation")
    akiec = validation["ISIC_0034322"]
    assert labels.HARMONISED_CLASSES[akiec["harmonised_diagnosis"]] == "AK"
    assert akiec["lesion_id"] == b"" and akiec["age"] == common.UNKNOWN_AGE


def test_task1_masks_follow_the_resize(tmp_path):
    small = common.LesionConfig(name="segmentation_16", max_side=16, segmentation=True)
    builder = _prepare(tmp_path, DUMMY, config=small)
    for ex in _examples(builder).values():
        assert ex["image"].shape[:2] == ex["segmentation_mask"].shape[:2]
        assert max(ex["image"].shape[:2]) == 16
        assert set(np.unique(ex["segmentation_mask"])) <= {0, 255}
        assert "label" not in ex


def test_optional_splits_and_zipped_archives(tmp_path):
    manual = _copy_dummy(tmp_path)
    for split in ("validation", "test"):
        for name in b.task3_names(split):
            shutil.rmtree(manual / name)
    for name in (T3_TRAIN, T3_TRAIN_GT):  # as downloaded: zips holding the folder
        shutil.make_archive(str(manual / name), "zip", manual, name)
        shutil.rmtree(manual / name)
    builder = _prepare(tmp_path, manual)
    assert set(builder.info.splits) == {"train"}
    assert builder.info.splits["train"].num_examples == 4


def test_missing_files_are_listed_together(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    shutil.copytree(DUMMY / T3_TRAIN, manual / T3_TRAIN)
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(tmp_path, manual)
    assert "2 expected file(s) missing" in str(err.value)
    assert str(manual / T3_TRAIN_GT) in str(err.value)
    assert str(manual / b.HAM_METADATA) in str(err.value)
    with pytest.raises(common.MissingFilesError, match=T1_TRAIN):
        _prepare(tmp_path, manual, config="segmentation_512")


def test_bad_inputs_fail_naming_the_file_or_are_skipped(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / T3_TRAIN / "ISIC_0024307.jpg").write_bytes(b"\x89PNG broken")
    with pytest.raises(common.ImageReadError, match="ISIC_0024307.jpg"):
        _prepare(tmp_path, manual)
    assert _nothing_prepared(tmp_path)
    (manual / T3_TRAIN / "ISIC_0024306.jpg").rename(manual / T3_TRAIN / "ISIC_9999999.jpg")
    with pytest.raises(common.UnlabeledImageError, match="ISIC_9999999.jpg"):
        _prepare(tmp_path, manual)
    builder = _prepare(tmp_path, manual, skip_bad_files=True)
    # skipped: the unlabelled image, the row whose image is gone, the corrupt image
    assert builder.info.metadata["num_skipped"] == {"train": 3}
    assert set(_examples(builder)) == {"ISIC_0024310", "ISIC_0024312"}


def test_ground_truth_contradicting_ham_metadata(tmp_path):
    manual = _copy_dummy(tmp_path)
    ham = manual / b.HAM_METADATA
    ham.write_text(ham.read_text().replace("ISIC_0024310,mel", "ISIC_0024310,nv"))
    with pytest.raises(b.GroundTruthError, match="ISIC_0024310 is 'mel'"):
        _prepare(tmp_path, manual)


def test_mask_missing_or_without_image(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / T1_TRAIN_GT / "ISIC_0000001_segmentation.png").unlink()
    with pytest.raises(common.UnlabeledImageError, match="ISIC_0000001.jpg"):
        _prepare(tmp_path, manual, config="segmentation_512")
    (manual / T1_TRAIN / "ISIC_0000001.jpg").unlink()
    (manual / T1_TRAIN / "ISIC_0000003.jpg").unlink()
    with pytest.raises(common.ImageReadError, match="ISIC_0000003_segmentation.png: mask without"):
        _prepare(tmp_path, manual, config="segmentation_512")
    builder = _prepare(tmp_path, manual, config="segmentation_512", skip_bad_files=True)
    assert builder.info.splits["train"].num_examples == 1


# HAM10000 dx counts (pandas value_counts of HAM10000_metadata.csv).
HAM_COUNTS = {
    "nv": 6705,
    "mel": 1113,
    "bkl": 1099,
    "bcc": 514,
    "akiec": 327,
    "vasc": 142,
    "df": 115,
}


@pytest.mark.slow
def test_real_ham10000_metadata(shared_data):
    path = shared_data / "csv" / "HAM10000" / b.HAM_METADATA
    metadata = b.read_ham_metadata(path)
    assert len(metadata) == 10_015
    frame = pd.read_csv(path)
    counts = pd.Series([r["dx"] for r in metadata.values()]).value_counts().to_dict()
    assert counts == frame.dx.value_counts().to_dict() == HAM_COUNTS
    assert len({r["lesion_id"] for r in metadata.values()}) == frame.lesion_id.nunique() == 7_470
    # Every dx code is a Task 3 class and maps through the label table.
    assert set(counts) == set(b.TASK3_CLASSES.values())
    mel = sum(labels.map_diagnosis("isic2018", dx).binary == "melanoma" for dx in frame.dx)
    assert mel == 1_113
    ages = [common.parse_age(r["age"]) for r in metadata.values()]
    assert ages.count(common.UNKNOWN_AGE) == frame.age.isna().sum() == 57
