"""Tests of the isic2020 builder: dummy archive layout, duplicates, bad inputs, the real CSVs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.isic2020 import isic2020_dataset_builder as b
from tfmelanoma import labels

DUMMY = Path(b.__file__).parent / "dummy_data"


class Isic2020ResizedTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = b.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["resized_512"]
    SPLITS = {"train": 4}  # 5 images, one of them the second of an official duplicate pair
    SKIP_CHECKSUMS = True


class Isic2020OriginalTest(Isic2020ResizedTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["original"]


class Isic2020WithDuplicatesTest(Isic2020ResizedTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["resized_512_with_duplicates"]
    SPLITS = {"train": 5}


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


def test_labels_ids_and_dropped_duplicate(tmp_path):
    builder = _prepare(tmp_path, DUMMY)
    train = _examples(builder)
    assert "ISIC_8521950" not in train and "ISIC_0079038" in train
    assert builder.info.metadata["duplicates_dropped"] == 1
    mel = train["ISIC_0149568"]
    assert (mel["label"], mel["diagnosis"], mel["patient_id"], mel["lesion_id"]) == (
        1,
        b"melanoma",
        b"IP_0962375",
        b"IL_6540984",
    )
    assert (mel["age"], mel["sex"], mel["anatomic_site"]) == (55, b"female", b"")
    assert train["ISIC_0015719"]["age"] == common.UNKNOWN_AGE
    assert labels.HARMONISED_CLASSES[train["ISIC_2637011"]["harmonised_diagnosis"]] == "UNK"
    assert labels.HARMONISED_CLASSES[train["ISIC_0015719"]["harmonised_diagnosis"]] == "NV"


def test_keep_duplicates_config_needs_no_duplicates_list(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / b.DUPLICATES).unlink()
    with pytest.raises(common.MissingFilesError, match=b.DUPLICATES):
        _prepare(tmp_path / "drop", manual)
    builder = _prepare(tmp_path / "keep", manual, config="resized_512_with_duplicates")
    train = _examples(builder)
    assert {"ISIC_8521950", "ISIC_0079038"} <= train.keys()
    # The pair is the same picture: identical hashes, which the merge step can also find.
    assert train["ISIC_8521950"]["sha256"] == train["ISIC_0079038"]["sha256"]


def test_kaggle_layout_and_zip_are_found(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / "jpeg").mkdir()
    (manual / "train").rename(manual / "jpeg" / "train")
    assert _prepare(tmp_path / "kaggle", manual).info.splits["train"].num_examples == 4
    shutil.make_archive(str(manual / "ISIC_2020_Training_JPEG"), "zip", manual / "jpeg", "train")
    shutil.rmtree(manual / "jpeg")
    assert _prepare(tmp_path / "zip", manual).info.splits["train"].num_examples == 4


def test_missing_files_are_listed_together(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "README.txt").write_text("not the dataset")
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(tmp_path, manual)
    message = str(err.value)
    assert "3 expected file(s) missing" in message
    for name in (b.TRAIN_ZIP, b.GROUND_TRUTH, b.DUPLICATES):
        assert str(manual / name) in message
    assert _nothing_prepared(tmp_path)


def test_corrupt_missing_and_unlabelled_images(tmp_path):
    manual = _copy_dummy(tmp_path)
    (manual / "train" / "ISIC_0015719.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(common.ImageReadError, match="ISIC_0015719.jpg"):
        _prepare(tmp_path, manual)
    assert _nothing_prepared(tmp_path)
    (manual / "train" / "ISIC_2637011.jpg").unlink()
    with pytest.raises(common.ImageReadError, match="ISIC_2637011.jpg: image listed in"):
        _prepare(tmp_path, manual)
    shutil.copy(manual / "train" / "ISIC_0149568.jpg", manual / "train" / "ISIC_0000001.jpg")
    with pytest.raises(common.UnlabeledImageError, match="ISIC_0000001.jpg"):
        _prepare(tmp_path, manual)
    assert _nothing_prepared(tmp_path)
    builder = _prepare(tmp_path, manual, skip_bad_files=True)
    assert set(_examples(builder)) == {"ISIC_0079038", "ISIC_0149568"}
    assert builder.info.metadata["num_skipped"] == {"train": 3}


def test_target_contradicting_diagnosis_is_a_bad_row(tmp_path):
    manual = _copy_dummy(tmp_path)
    gt = manual / b.GROUND_TRUTH
    gt.write_text(gt.read_text().replace("melanoma,malignant,1", "melanoma,malignant,0"))
    with pytest.raises(b.GroundTruthError, match=r"v2.csv:6: ISIC_0149568 has target '0'"):
        _prepare(tmp_path, manual)
    builder = _prepare(tmp_path, manual, skip_bad_files=True)
    assert builder.info.splits["train"].num_examples == 3


def test_v1_ground_truth_without_lesion_id_is_refused(tmp_path):
    manual = _copy_dummy(tmp_path)
    frame = pd.read_csv(manual / b.GROUND_TRUTH).drop(columns="lesion_id")
    frame.to_csv(manual / b.GROUND_TRUTH, index=False)
    with pytest.raises(b.GroundTruthError, match="lesion_id"):
        _prepare(tmp_path, manual)


def test_beam_generation_matches_python(tmp_path):
    apache_beam = pytest.importorskip("apache_beam", reason="apache-beam not installed (extra)")
    builder = b.Builder(data_dir=str(tmp_path / "x"), config="original", use_beam=True)
    assert isinstance(builder._generate_examples(split="train", rows=[]), apache_beam.PTransform)
    beam = _examples(_prepare(tmp_path / "beam", DUMMY, use_beam=True))
    python = _examples(_prepare(tmp_path / "py", DUMMY))
    assert beam.keys() == python.keys()
    for image_id, ex in python.items():
        assert beam[image_id]["sha256"] == ex["sha256"]
        assert beam[image_id]["lesion_id"] == ex["lesion_id"]


# Diagnosis counts of ISIC_2020_Training_GroundTruth_v2.csv (pandas value_counts).
DIAGNOSIS_COUNTS = {
    "unknown": 27_124,
    "nevus": 5_193,
    "melanoma": 584,
    "seborrheic keratosis": 135,
    "lentigo NOS": 44,
    "lichenoid keratosis": 37,
    "solar lentigo": 7,
    "cafe-au-lait macule": 1,
    "atypical melanocytic proliferation": 1,
}


@pytest.mark.slow
def test_real_csvs(shared_data, tmp_path):
    folder = shared_data / "csv" / "ISIC2020"
    rows, errors = b.read_rows(tmp_path, folder / b.GROUND_TRUTH)
    assert errors == {}
    assert len(rows) == 33_126
    counts = pd.Series([r.diagnosis for r in rows]).value_counts().to_dict()
    frame = pd.read_csv(folder / b.GROUND_TRUTH)
    assert counts == frame.diagnosis.value_counts().to_dict() == DIAGNOSIS_COUNTS
    assert len({r.patient_id for r in rows}) == frame.patient_id.nunique() == 2_056
    dropped = b.read_duplicates(folder / b.DUPLICATES)
    assert len(dropped) == len(pd.read_csv(folder / b.DUPLICATES)) == 425
    kept = [r for r in rows if r.image_id not in dropped]
    assert len(kept) == 32_701
    assert sum(r.diagnosis == "melanoma" for r in kept) == 581
    # 417 of the 425 official pairs share a lesion id; after dropping, 8 lesions have 2 images
    # (the merge step groups by patient, so these stay on one side of a split anyway).
    by_image = frame.set_index("image_name").lesion_id
    pairs = pd.read_csv(folder / b.DUPLICATES)
    assert (by_image[pairs.image_name_1].values == by_image[pairs.image_name_2].values).sum() == 417
    kept_lesions = pd.Series([r.lesion_id for r in kept]).value_counts()
    assert len(kept_lesions) == 32_693 and (kept_lesions == 2).sum() == 8
    melanoma = sum(labels.map_diagnosis("isic2020", r.diagnosis).binary == "melanoma" for r in rows)
    assert melanoma == frame.target.sum() == 584
