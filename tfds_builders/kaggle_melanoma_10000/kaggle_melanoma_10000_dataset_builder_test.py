"""Tests of the kaggle_melanoma_10000 builder over a dummy copy of the Kaggle layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.kaggle_melanoma_10000 import kaggle_melanoma_10000_dataset_builder as b

DUMMY = Path(b.__file__).parent / "dummy_data"


class KaggleMelanoma10000Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = b.Builder
    SPLITS = {"train": 4, "test": 2}
    SKIP_CHECKSUMS = True


def _prepare(tmp_path: Path, manual_dir: Path, **kwargs):
    file_format = kwargs.pop("file_format", None)
    builder = b.Builder(data_dir=str(tmp_path / "data"), **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)),
        file_format=file_format,
    )
    return builder


def _copy_dummy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DUMMY, tmp_path / "manual"))


def test_labels_from_folders(tmp_path):
    builder = _prepare(tmp_path, DUMMY)
    test = {e["image_id"].decode(): e for e in tfds.as_numpy(builder.as_dataset(split="test"))}
    assert test["test/malignant/melanoma_10105"]["label"] == 1
    assert test["test/malignant/melanoma_10105"]["diagnosis"] == b"malignant"
    assert test["test/benign/melanoma_9605"]["label"] == 0
    assert {e["source"] for e in test.values()} == {b"kaggle_melanoma_10000"}


def test_kaggle_zip_and_array_record_data_source(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    shutil.make_archive(str(manual / "archive"), "zip", DUMMY, b.ROOT)
    builder = _prepare(tmp_path, manual, file_format="array_record")
    source = tfds.data_source("kaggle_melanoma_10000", split="train", data_dir=tmp_path / "data")
    assert len(source) == builder.info.splits["train"].num_examples == 4
    assert sorted(int(source[i]["label"]) for i in range(len(source))) == [0, 0, 1, 1]


def test_missing_folders_are_listed_together(tmp_path):
    manual = _copy_dummy(tmp_path)
    shutil.rmtree(manual / b.ROOT / "test")
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(tmp_path, manual)
    assert "2 expected file(s) missing" in str(err.value)
    assert str(manual / b.ROOT / "test" / "malignant") in str(err.value)


def test_corrupt_and_unlabelled_images(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / b.ROOT / "train" / "benign" / "melanoma_1.jpg").write_bytes(b"")
    with pytest.raises(common.ImageReadError, match="melanoma_1.jpg"):
        _prepare(tmp_path, manual)
    shutil.copy(
        manual / b.ROOT / "test" / "benign" / "melanoma_9605.jpg", manual / b.ROOT / "train"
    )
    with pytest.raises(common.UnlabeledImageError, match="train/melanoma_9605.jpg"):
        _prepare(tmp_path, manual)
    builder = _prepare(tmp_path, manual, skip_bad_files=True)
    assert builder.info.metadata["num_skipped"] == {"train": 2}
    assert builder.info.splits["train"].num_examples == 3
