"""ISIC 2017 as users really hold it: Test_v2 without its metadata CSV, or without Part 1 masks."""

from __future__ import annotations

import shutil
from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.isic2017 import isic2017_dataset_builder as isic2017

DUMMY = Path(isic2017.__file__).parent / "dummy_data"


def _prepare(manual: Path, data_dir: Path, config: str = "classification_512"):
    builder = isic2017.Builder(data_dir=str(data_dir), config=config, file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    return builder


def _sizes(builder) -> dict[str, int]:
    return {name: split.num_examples for name, split in builder.info.splits.items()}


def test_test_metadata_is_optional(tmp_path):
    """Test_v2's metadata CSV holds only age and sex; without it they are unknown."""
    manual = tmp_path / "manual"
    shutil.copytree(DUMMY, manual)
    (manual / "ISIC-2017_Test_v2_Data" / "ISIC-2017_Test_v2_Data_metadata.csv").unlink()
    builder = _prepare(manual, tmp_path / "data")
    assert _sizes(builder) == {"train": 3, "validation": 2, "test": 2}
    assert {int(ex["age"]) for ex in builder.as_data_source()["test"]} == {common.UNKNOWN_AGE}


def test_segmentation_without_test_masks_builds_train_and_validation(tmp_path):
    """The classification test download (no Part 1 test masks) must not block segmentation."""
    manual = tmp_path / "manual"
    shutil.copytree(DUMMY, manual)
    shutil.rmtree(manual / "ISIC-2017_Test_v2_Part1_GroundTruth")
    builder = _prepare(manual, tmp_path / "data", "segmentation_512")
    assert _sizes(builder) == {"train": 3, "validation": 2}
