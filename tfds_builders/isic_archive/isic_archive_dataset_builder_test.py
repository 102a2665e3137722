"""Tests of the isic_archive builder over dummy data, the embedded sample and the real set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.isic_archive import isic_archive_dataset_builder as builder_module


class IsicArchiveOriginalTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["original"]
    SPLITS = {"train": 4}
    SKIP_CHECKSUMS = True

    @classmethod
    def setUpClass(cls):
        cls.DL_EXTRACT_RESULT = {}
        super().setUpClass()


class IsicArchiveResizedTest(IsicArchiveOriginalTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["resized_512"]


DUMMY = Path(builder_module.__file__).parent / "dummy_data"


def _prepare(tmp_path: Path, manual_dir: Path, **kwargs) -> tfds.core.DatasetBuilder:
    builder = builder_module.Builder(data_dir=str(tmp_path / "data"), config="original", **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def test_labels_and_schema_from_metadata(tmp_path):
    builder = _prepare(tmp_path, DUMMY)
    examples = {
        ex["image_id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split="train"))
    }
    assert set(examples) == {"ISIC_0000000", "ISIC_0000002", "ISIC_0000013", "ISIC_0000257"}
    nevus, melanoma, no_dx = (
        examples["ISIC_0000000"],
        examples["ISIC_0000002"],
        examples["ISIC_0000257"],
    )
    assert (nevus["label"], nevus["diagnosis"], nevus["age"], nevus["sex"]) == (
        0,
        b"nevus",
        55,
        b"female",
    )
    assert (melanoma["label"], melanoma["diagnosis"]) == (1, b"melanoma")
    assert no_dx["diagnosis"] == b"unknown_benign" and no_dx["label"] == 0
    assert nevus["source"] == b"isic_archive" and nevus["image_type"] == b"dermoscopic"
    # The stored hashes are those of the decoded source file.
    expected = common.read_image(DUMMY / "images" / "ISIC_0000000.jpg")
    assert nevus["sha256"].decode() == expected.sha256 and nevus["phash"].decode() == expected.phash
    assert nevus["image"].shape == expected.array.shape


def test_missing_manual_dir_shows_instructions(tmp_path):
    # TFDS itself refuses a missing or empty manual directory, quoting our instructions.
    with pytest.raises(AssertionError, match="images/ISIC_0000000.jpg") as err:
        _prepare(tmp_path, tmp_path / "absent")
    assert str(tmp_path / "absent") in str(err.value)


def test_missing_folders_are_listed_in_one_error(tmp_path):
    manual = tmp_path / "manual"
    (manual / "other").mkdir(parents=True)
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(tmp_path, manual)
    message = str(err.value)
    assert str(manual / "images") in message and str(manual / "metadata") in message
    assert "2 expected file(s) missing" in message


def _broken_copy(tmp_path: Path) -> Path:
    manual = tmp_path / "manual"
    shutil.copytree(DUMMY, manual)
    (manual / "images" / "ISIC_0000013.jpg").write_bytes(b"not a jpeg")
    return manual


def test_corrupt_image_fails_naming_file_and_leaves_nothing(tmp_path):
    manual = _broken_copy(tmp_path)
    with pytest.raises(common.ImageReadError, match="ISIC_0000013.jpg"):
        _prepare(tmp_path, manual)
    # TFDS writes into a temporary folder and renames at the end: no half-written version.
    version_dir = tmp_path / "data" / "isic_archive" / "original" / "1.0.0"
    assert not version_dir.exists()


def test_skip_bad_files_counts_them(tmp_path):
    manual = _broken_copy(tmp_path)
    (manual / "metadata" / "ISIC_0000002.json").unlink()
    builder = _prepare(tmp_path, manual, skip_bad_files=True)
    assert builder.info.splits["train"].num_examples == 2
    assert builder.info.metadata["num_skipped"] == {"train": 2}
    skipped = builder.info.metadata["skipped_files"]["train"]
    assert len(skipped) == 2
    assert any("ISIC_0000013.jpg" in s for s in skipped)
    assert any("ISIC_0000002.json" in s for s in skipped)


def test_unmapped_diagnosis_names_dataset_and_value(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(DUMMY, manual)
    meta_path = manual / "metadata" / "ISIC_0000000.json"
    record = json.loads(meta_path.read_text())
    record["meta"]["clinical"]["diagnosis"] = "made-up lesion"
    meta_path.write_text(json.dumps(record))
    with pytest.raises(KeyError, match="'isic_archive'.*'made-up lesion'"):
        _prepare(tmp_path, manual)


@pytest.mark.slow
def test_embedded_sample_counts(tmp_path):
    sample = Path(__file__).resolve().parents[2] / "tfmelanoma" / "data" / "sample"
    builder = _prepare(tmp_path, sample)
    labels = np.array([ex["label"] for ex in tfds.as_numpy(builder.as_dataset(split="train"))])
    assert len(labels) == 557 and int(labels.sum()) == 159


@pytest.mark.slow
@pytest.mark.realdata
def test_real_uda1_counts(tmp_path, shared_data):
    builder = builder_module.Builder(data_dir=str(tmp_path / "data"), config="resized_512")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=shared_data / "isic_archive_uda1"),
        file_format="array_record",
    )
    source = tfds.data_source("isic_archive/resized_512", data_dir=str(tmp_path / "data"))
    labels = np.array([source["train"][i]["label"] for i in range(len(source["train"]))])
    assert len(labels) == 557 and int(labels.sum()) == 159
