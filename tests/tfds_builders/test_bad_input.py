"""Bad input for isic2016, ph2, med_node and derm7pt (isic2017 / kaggle_fanconic: behaviour tests).

Per builder: a missing archive part is listed by name, a corrupt image and an image without a label
are errors naming the file, and `skip_bad_files=True` skips them with the count recorded.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.derm7pt import derm7pt_dataset_builder as derm7pt
from tfds_builders.isic2016 import isic2016_dataset_builder as isic2016
from tfds_builders.med_node import med_node_dataset_builder as med_node
from tfds_builders.ph2 import ph2_dataset_builder as ph2


@dataclasses.dataclass(frozen=True)
class Case:
    module: object
    config: str
    removed: str  # a part of the download, relative to dummy_data/
    corrupt: str  # an image to break, and the split it belongs to
    corrupt_split: str
    stray: str  # where an unlabeled copy of `corrupt` goes
    stray_split: str
    sizes: dict
    stray_named: str = ""  # what the error names, when not the stray file itself

    @property
    def dummy(self) -> Path:
        return Path(self.module.__file__).parent / "dummy_data"


CASES = {
    "isic2016": Case(
        isic2016,
        "segmentation_512",
        "ISBI2016_ISIC_Part1_Test_GroundTruth",
        "ISBI2016_ISIC_Part1_Training_Data/ISIC_0000002.jpg",
        "train",
        "ISBI2016_ISIC_Part1_Test_Data/ISIC_0000999.jpg",
        "test",
        {"train": 3, "test": 2},
    ),
    "ph2": Case(
        ph2,
        "segmentation_512",
        "PH2Dataset/PH2_dataset.txt",
        "PH2Dataset/PH2 Dataset images/IMD003/IMD003_Dermoscopic_Image/IMD003.bmp",
        "train",
        "PH2Dataset/PH2 Dataset images/IMD999/IMD999_Dermoscopic_Image/IMD999.bmp",
        "train",
        {"train": 4},
        stray_named="PH2Dataset/PH2 Dataset images/IMD999",
    ),
    "med_node": Case(
        med_node,
        "resized_512",
        "complete_mednode_dataset/naevus",
        "complete_mednode_dataset/naevus/1122530.jpg",
        "train",
        "complete_mednode_dataset/unsorted/42.jpg",
        "train",
        {"train": 5},
    ),
    "derm7pt": Case(
        derm7pt,
        "clinical_512",
        "release_v0/meta/valid_indexes.csv",
        "release_v0/images/NEL/NEL003c.jpg",
        "train",
        "release_v0/images/NEL/NEL999c.jpg",
        "all",
        {"train": 3, "validation": 2, "test": 2},
    ),
}


def _prepare(case: Case, manual: Path, data_dir: Path, **kwargs):
    builder = case.module.Builder(data_dir=str(data_dir), config=case.config, **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    return builder


def _copy(case: Case, tmp_path: Path) -> Path:
    manual = tmp_path / "manual"
    shutil.copytree(case.dummy, manual)
    return manual


def _nothing_prepared(data_dir: Path) -> bool:
    return not [p for p in data_dir.rglob("*") if p.name == "1.0.0" or "incomplete" in p.name]


@pytest.fixture(params=sorted(CASES))
def case(request) -> Case:
    return CASES[request.param]


def test_dummy_data_prepares(case, tmp_path):
    builder = _prepare(case, case.dummy, tmp_path / "data")
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == case.sizes


def test_missing_part_is_named(case, tmp_path):
    manual = _copy(case, tmp_path)
    missing = manual / case.removed
    shutil.rmtree(missing) if missing.is_dir() else missing.unlink()
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(case, manual, tmp_path / "data")
    assert str(missing) in str(err.value)
    assert _nothing_prepared(tmp_path / "data")


def test_corrupt_image_named_or_skipped(case, tmp_path):
    manual = _copy(case, tmp_path)
    bad = manual / case.corrupt
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    with pytest.raises(common.ImageReadError, match=re.escape(str(bad))):
        _prepare(case, manual, tmp_path / "data")
    assert _nothing_prepared(tmp_path / "data")
    builder = _prepare(case, manual, tmp_path / "data", skip_bad_files=True)
    assert builder.info.splits[case.corrupt_split].num_examples == (
        case.sizes[case.corrupt_split] - 1
    )
    assert builder.info.metadata["num_skipped"] == {case.corrupt_split: 1}


def test_image_without_label_named_or_skipped(case, tmp_path):
    manual = _copy(case, tmp_path)
    stray = manual / case.stray
    stray.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(manual / case.corrupt, stray)
    named = manual / (case.stray_named or case.stray)
    with pytest.raises(common.UnlabeledImageError, match=re.escape(str(named))):
        _prepare(case, manual, tmp_path / "data")
    assert _nothing_prepared(tmp_path / "data")
    builder = _prepare(case, manual, tmp_path / "data", skip_bad_files=True)
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == case.sizes
    assert builder.info.metadata["num_skipped"] == {case.stray_split: 1}


def test_isic2016_bad_label_value_names_the_row(tmp_path):
    case = CASES["isic2016"]
    manual = _copy(case, tmp_path)
    csv_path = manual / "ISBI2016_ISIC_Part3_Test_GroundTruth.csv"
    csv_path.write_text(csv_path.read_text().replace("1.0", "maybe"))
    with pytest.raises(ValueError, match=re.escape(f"{csv_path}:2: label 'maybe'")):
        _prepare(case, manual, tmp_path / "data")


def test_isic2016_zips_as_downloaded(tmp_path):
    case = CASES["isic2016"]
    manual = _copy(case, tmp_path)
    for folder in [p for p in manual.iterdir() if p.is_dir()]:
        shutil.make_archive(str(folder), "zip", manual, folder.name)
        shutil.rmtree(folder)
    builder = _prepare(case, manual, tmp_path / "data")
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == case.sizes


def test_derm7pt_index_out_of_range(tmp_path):
    case = CASES["derm7pt"]
    manual = _copy(case, tmp_path)
    index_csv = manual / "release_v0/meta/test_indexes.csv"
    index_csv.write_text("indexes\n5\n70\n")
    with pytest.raises(ValueError, match=re.escape(f"{index_csv}:3: index '70'")):
        _prepare(case, manual, tmp_path / "data")


def test_ph2_labels_and_masks(tmp_path):
    builder = _prepare(
        CASES["ph2"], CASES["ph2"].dummy, tmp_path / "data", file_format="array_record"
    )
    examples = {ex["image_id"].decode(): ex for ex in builder.as_data_source()["train"]}
    assert {k: ex["diagnosis"].decode() for k, ex in examples.items()} == {
        "IMD002": "common_nevus",
        "IMD003": "atypical_nevus",
        "IMD058": "melanoma",
        "IMD061": "common_nevus",
    }
    assert examples["IMD058"]["label"] == 1 and examples["IMD003"]["label"] == 0
    assert examples["IMD002"]["segmentation_mask"].shape == (7, 10, 1)


def test_every_bad_image_of_a_split_is_named_in_one_error(tmp_path):
    """Two broken files: one error listing both (not one file per run), nothing prepared."""
    case = CASES["med_node"]
    manual = _copy(case, tmp_path)
    first = manual / case.corrupt
    first.write_bytes(b"")  # empty
    others = sorted((manual / "complete_mednode_dataset" / "melanoma").glob("*.jpg"))
    second = others[0]
    second.write_bytes(second.read_bytes()[:40])  # truncated
    with pytest.raises(common.ImageReadError) as err:
        _prepare(case, manual, tmp_path / "data")
    message = str(err.value)
    assert "2 bad files" in message
    assert f"{first}: empty file (0 bytes)" in message
    assert f"{second}: truncated or corrupt image" in message
    assert "skip_bad_files=True" in message
    assert _nothing_prepared(tmp_path / "data")
