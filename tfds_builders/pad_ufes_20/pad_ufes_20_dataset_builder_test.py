"""Tests of the pad_ufes_20 builder over a dummy copy of the Mendeley layout, and bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.pad_ufes_20 import pad_ufes_20_dataset_builder as b
from tfmelanoma import labels

DUMMY = Path(b.__file__).parent / "dummy_data"


class PadUfes20ResizedTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = b.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["resized_512"]
    SPLITS = {"train": 5}
    SKIP_CHECKSUMS = True


class PadUfes20OriginalTest(PadUfes20ResizedTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["original"]


def _prepare(tmp_path: Path, manual_dir: Path, config="original", **kwargs):
    builder = b.Builder(data_dir=str(tmp_path / "data"), config=config, **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def _examples(builder) -> dict[str, dict]:
    return {e["image_id"].decode(): e for e in tfds.as_numpy(builder.as_dataset(split="train"))}


def _copy_dummy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DUMMY, tmp_path / "manual"))


def _nothing_prepared(tmp_path: Path) -> bool:
    data = tmp_path / "data"
    return not data.exists() or not any(
        p.name == "dataset_info.json" or ".tfrecord" in p.name for p in data.rglob("*")
    )


def test_labels_ids_and_clinical_metadata(tmp_path):
    train = _examples(_prepare(tmp_path, DUMMY))
    mel = train["PAT_795_1508_925"]  # stored as RGBA: converted to RGB
    assert mel["image"].shape == (30, 40, 3)
    assert (mel["label"], mel["diagnosis"], mel["patient_id"], mel["lesion_id"]) == (
        1,
        b"MEL",
        b"PAT_795",
        b"1508",
    )
    assert (mel["age"], mel["sex"], mel["anatomic_site"], mel["image_type"]) == (
        79,
        b"male",
        b"chest",
        b"clinical",
    )
    nev = train["PAT_1516_1765_530"]
    assert (nev["sex"], nev["age"]) == (b"", 8)
    ack = train["PAT_1545_1867_547"]
    assert labels.HARMONISED_CLASSES[ack["harmonised_diagnosis"]] == "AK"
    assert train["PAT_1545_1867_548"]["lesion_id"] == ack["lesion_id"] == b"1867"


def test_doubled_folders_and_zips_as_downloaded(tmp_path):
    manual = _copy_dummy(tmp_path)
    images = manual / "images"
    # imgs_part_1 extracted with its inner folder; imgs_part_2/3 left as the downloaded zips.
    (images / "imgs_part_1").rename(images / "tmp")
    (images / "imgs_part_1").mkdir()
    (images / "tmp").rename(images / "imgs_part_1" / "imgs_part_1")
    for part in ("imgs_part_2", "imgs_part_3"):
        shutil.make_archive(str(images / part), "zip", images, part)
        shutil.rmtree(images / part)
    assert _prepare(tmp_path, manual).info.splits["train"].num_examples == 5


def test_missing_files_are_listed_together(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / b.METADATA).unlink()
    shutil.rmtree(manual / "images" / "imgs_part_2")
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(tmp_path, manual)
    assert "2 expected file(s) missing" in str(err.value)
    assert str(manual / b.METADATA) in str(err.value)
    assert "images/imgs_part_2.zip" in str(err.value)


def test_bad_inputs_fail_naming_the_file_or_are_skipped(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / "images" / "imgs_part_1" / "PAT_46_881_939.png").write_bytes(b"\x89PNG\r\n")
    with pytest.raises(common.ImageReadError, match="PAT_46_881_939.png"):
        _prepare(tmp_path, manual)
    assert _nothing_prepared(tmp_path)
    (manual / "images" / "imgs_part_2" / "PAT_1545_1867_547.png").unlink()
    with pytest.raises(common.ImageReadError, match="PAT_1545_1867_547.png: listed in"):
        _prepare(tmp_path, manual)
    extra = manual / "images" / "imgs_part_3" / "PAT_9_9_9.png"
    shutil.copy(manual / "images" / "imgs_part_3" / "PAT_795_1508_925.png", extra)
    with pytest.raises(common.UnlabeledImageError, match="PAT_9_9_9.png"):
        _prepare(tmp_path, manual)
    builder = _prepare(tmp_path, manual, skip_bad_files=True)
    assert builder.info.metadata["num_skipped"] == {"train": 3}
    assert builder.info.splits["train"].num_examples == 3


def test_unmapped_diagnosis_is_an_error_naming_it(tmp_path):
    manual = _copy_dummy(tmp_path)
    meta = manual / b.METADATA
    meta.write_text(meta.read_text().replace(",NEV,", ",BOD,"))
    with pytest.raises(labels.UnmappedDiagnosisError, match="'BOD'"):
        _prepare(tmp_path, manual)
