"""Bad input, zips, temp-dir safety, ArrayRecord and the TF-free path for isic2017 / kaggle_fanconic.

Each test copies a builder's `dummy_data/` (the official archive layout) to a temp dir, breaks it in
one way, and checks the error names the file, that `skip_bad_files=True` skips and records the
count, and that nothing half-written is left in the data dir.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.tf_hidden import HIDE_TENSORFLOW
from tfds_builders import common
from tfds_builders.isic2017 import isic2017_dataset_builder as isic2017
from tfds_builders.kaggle_fanconic import kaggle_fanconic_dataset_builder as fanconic

ISIC_DUMMY = Path(isic2017.__file__).parent / "dummy_data"
FANCONIC_DUMMY = Path(fanconic.__file__).parent / "dummy_data"
TRAIN = "ISIC-2017_Training"


def _prepare(builder_cls, manual_dir, data_dir, config=None, **kwargs):
    builder = builder_cls(data_dir=str(data_dir), config=config, **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "manual"
    shutil.copytree(src, dst)
    return dst


def _assert_nothing_prepared(data_dir: Path, name: str) -> None:
    """No dataset version and no `incomplete.*` temp dir anywhere under the builder's folder."""
    leftovers = [
        p
        for p in (data_dir / name).rglob("*")
        if p.name == "1.0.0" or p.name.startswith("incomplete") or ".incomplete" in p.name
    ]
    assert leftovers == []


def _split_sizes(builder) -> dict[str, int]:
    return {name: split.num_examples for name, split in builder.info.splits.items()}


def test_empty_manual_dir_error_lists_every_file(tmp_path):
    """TFDS itself refuses an empty manual dir; its message carries our instructions."""
    manual = tmp_path / "manual"
    manual.mkdir()
    with pytest.raises(AssertionError) as err:
        _prepare(isic2017.Builder, manual, tmp_path / "data", config="segmentation_512")
    assert str(manual) in str(err.value)
    for split in ("Training", "Validation"):
        for name in ("Data.zip", "Part1_GroundTruth.zip", "Part3_GroundTruth.csv"):
            assert f"ISIC-2017_{split}_{name}" in str(err.value)
    _assert_nothing_prepared(tmp_path / "data", "isic2017")


def test_missing_archives_are_listed_in_one_error(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "unrelated.txt").write_text("not part of ISIC 2017")
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(isic2017.Builder, manual, tmp_path / "data", config="segmentation_512")
    message = str(err.value)
    for stem in ("ISIC-2017_Training", "ISIC-2017_Validation"):
        for name in (f"{stem}_Data", f"{stem}_Part1_GroundTruth", f"{stem}_Part3_GroundTruth.csv"):
            assert str(manual / name) in message
    assert "6 expected file(s)" in message
    assert "challenge.isic-archive.com" in message  # the instructions come with it
    _assert_nothing_prepared(tmp_path / "data", "isic2017")


def test_partial_optional_test_split_is_an_error(tmp_path):
    manual = _copy(ISIC_DUMMY, tmp_path)
    (manual / "ISIC-2017_Test_v2_Part3_GroundTruth.csv").unlink()
    with pytest.raises(common.MissingFilesError, match="ISIC-2017_Test_v2_Part3_GroundTruth.csv"):
        _prepare(isic2017.Builder, manual, tmp_path / "data")


def test_test_split_is_optional(tmp_path):
    manual = _copy(ISIC_DUMMY, tmp_path)
    for p in manual.glob("ISIC-2017_Test_v2*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    builder = _prepare(isic2017.Builder, manual, tmp_path / "data")
    assert _split_sizes(builder) == {"train": 3, "validation": 2}


def test_zips_as_downloaded(tmp_path):
    """Data and mask folders given as the official zips are extracted and read."""
    manual = _copy(ISIC_DUMMY, tmp_path)
    for folder in [p for p in manual.iterdir() if p.is_dir()]:
        with zipfile.ZipFile(f"{folder}.zip", "w") as z:
            for f in folder.rglob("*"):
                z.write(f, f.relative_to(manual))
        shutil.rmtree(folder)
    builder = _prepare(isic2017.Builder, manual, tmp_path / "data", config="segmentation_512")
    assert _split_sizes(builder) == {"train": 3, "validation": 2, "test": 2}


def test_corrupt_image_names_the_file_and_leaves_nothing(tmp_path, caplog):
    manual = _copy(ISIC_DUMMY, tmp_path)
    bad = manual / f"{TRAIN}_Data" / "ISIC_0000001.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(common.ImageReadError, match=str(bad)):
        _prepare(isic2017.Builder, manual, tmp_path / "data")
    _assert_nothing_prepared(tmp_path / "data", "isic2017")

    with caplog.at_level("WARNING", logger="tfds_builders.generation"):
        builder = _prepare(isic2017.Builder, manual, tmp_path / "data", skip_bad_files=True)
    assert _split_sizes(builder)["train"] == 2
    logged = [r.getMessage() for r in caplog.records if r.name == "tfds_builders.generation"]
    assert any(str(bad) in m for m in logged)
    assert "isic2017/train: skipped 1 bad file(s); see info.metadata" in logged
    assert builder.info.metadata["num_skipped"] == {"train": 1}
    # Recorded in the prepared dataset, not only in memory.
    reloaded = tfds.builder("isic2017", data_dir=str(tmp_path / "data"))
    assert reloaded.info.metadata["num_skipped"] == {"train": 1}
    assert str(bad) in reloaded.info.metadata["skipped_files"]["train"][0]


def test_label_row_without_image(tmp_path):
    manual = _copy(ISIC_DUMMY, tmp_path)
    gone = manual / "ISIC-2017_Validation_Data" / "ISIC_0001852.jpg"
    gone.unlink()
    with pytest.raises(common.ImageReadError, match=f"{gone}: image file not found"):
        _prepare(isic2017.Builder, manual, tmp_path / "data")
    builder = _prepare(isic2017.Builder, manual, tmp_path / "data", skip_bad_files=True)
    assert _split_sizes(builder)["validation"] == 1
    assert builder.info.metadata["num_skipped"] == {"validation": 1}


def test_image_without_label(tmp_path):
    manual = _copy(ISIC_DUMMY, tmp_path)
    extra = manual / f"{TRAIN}_Data" / "ISIC_0099999.jpg"
    shutil.copy(manual / f"{TRAIN}_Data" / "ISIC_0000000.jpg", extra)
    with pytest.raises(common.UnlabeledImageError, match=str(extra)):
        _prepare(isic2017.Builder, manual, tmp_path / "data")
    _assert_nothing_prepared(tmp_path / "data", "isic2017")
    builder = _prepare(isic2017.Builder, manual, tmp_path / "data", skip_bad_files=True)
    assert _split_sizes(builder)["train"] == 3
    assert builder.info.metadata["num_skipped"] == {"train": 1}


def test_malformed_label_row_names_file_and_line(tmp_path):
    manual = _copy(ISIC_DUMMY, tmp_path)
    labels = manual / f"{TRAIN}_Part3_GroundTruth.csv"
    labels.write_text(labels.read_text().replace("ISIC_0000001,1.0", "ISIC_0000001,yes"))
    with pytest.raises(ValueError, match=f"{labels}:3: expected columns"):
        _prepare(isic2017.Builder, manual, tmp_path / "data")
    _assert_nothing_prepared(tmp_path / "data", "isic2017")


def test_missing_mask_names_the_file(tmp_path):
    manual = _copy(ISIC_DUMMY, tmp_path)
    mask = manual / f"{TRAIN}_Part1_GroundTruth" / "ISIC_0000002_segmentation.png"
    mask.unlink()
    with pytest.raises(common.ImageReadError, match=f"{mask}: mask file not found"):
        _prepare(isic2017.Builder, manual, tmp_path / "data", config="segmentation_512")
    _assert_nothing_prepared(tmp_path / "data", "isic2017")


def test_interrupted_generation_leaves_no_dataset(tmp_path, monkeypatch):
    """Ctrl-C in the middle of a split: TFDS's incomplete dir is removed, no version appears."""
    calls = {"n": 0}
    real_read = common.read_image

    def read_then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # after the whole train split, inside validation
            raise KeyboardInterrupt
        return real_read(*args, **kwargs)

    monkeypatch.setattr(common, "read_image", read_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _prepare(isic2017.Builder, ISIC_DUMMY, tmp_path / "data")
    assert calls["n"] == 4
    _assert_nothing_prepared(tmp_path / "data", "isic2017")
    assert not tfds.builder("isic2017", data_dir=str(tmp_path / "data")).is_prepared()


def test_prepared_dataset_survives_later_bad_input(tmp_path):
    manual = _copy(ISIC_DUMMY, tmp_path)
    _prepare(isic2017.Builder, manual, tmp_path / "data")
    (manual / f"{TRAIN}_Data" / "ISIC_0000000.jpg").write_bytes(b"broken later")
    builder = _prepare(isic2017.Builder, manual, tmp_path / "data")  # reuses, does not regenerate
    assert _split_sizes(builder) == {"train": 3, "validation": 2, "test": 2}


def test_masks_follow_the_resize(tmp_path):
    config = common.LesionConfig(name="segmentation_8", max_side=8, segmentation=True)
    builder = _prepare(isic2017.Builder, ISIC_DUMMY, tmp_path / "data", config=config)
    for ex in tfds.as_numpy(builder.as_dataset(split="train")):
        assert ex["image"].shape == (6, 8, 3)  # 10x14 dummy images, long side 8
        assert ex["segmentation_mask"].shape == (6, 8, 1)
        assert set(np.unique(ex["segmentation_mask"])) <= {0, 255}
        assert ex["segmentation_mask"].max() == 255
    # Hashes are of the original pixels: the resized and original configs agree per image.
    original = _prepare(
        isic2017.Builder, ISIC_DUMMY, tmp_path / "data", config="classification_original"
    )
    hashes = {
        name: {
            ex["image_id"]: (ex["sha256"], ex["phash"])
            for ex in tfds.as_numpy(b.as_dataset(split="train"))
        }
        for name, b in (("resized", builder), ("original", original))
    }
    assert hashes["resized"] == hashes["original"]
    assert len(set(hashes["original"].values())) == 3


def test_kaggle_fanconic_zip_and_unlabeled_folder(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    with zipfile.ZipFile(manual / "archive.zip", "w") as z:  # Kaggle's zip nests data/
        for f in FANCONIC_DUMMY.rglob("*.jpg"):
            z.write(f, Path("data") / f.relative_to(FANCONIC_DUMMY))
    builder = _prepare(fanconic.Builder, manual, tmp_path / "data")
    assert _split_sizes(builder) == {"train": 5, "test": 4}

    manual = _copy(FANCONIC_DUMMY, tmp_path / "second")
    stray = manual / "test" / "unsure" / "9.jpg"
    stray.parent.mkdir()
    shutil.copy(manual / "test" / "benign" / "1.jpg", stray)
    with pytest.raises(common.UnlabeledImageError, match=str(stray)):
        _prepare(fanconic.Builder, manual, tmp_path / "data2")
    _assert_nothing_prepared(tmp_path / "data2", "kaggle_fanconic")
    builder = _prepare(fanconic.Builder, manual, tmp_path / "data2", skip_bad_files=True)
    assert builder.info.metadata["num_skipped"] == {"test": 1}


def test_kaggle_fanconic_missing_folders_listed(tmp_path):
    manual = tmp_path / "manual"
    (manual / "train" / "benign").mkdir(parents=True)
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(fanconic.Builder, manual, tmp_path / "data")
    for name in ("train/malignant", "test/benign", "test/malignant"):
        assert str(manual / name) in str(err.value)
    assert str(manual / "train/benign") not in str(err.value)


_TF_FREE_READER = HIDE_TENSORFLOW + textwrap.dedent(
    """
    import json, sys
    import tensorflow_datasets as tfds
    import tfds_builders  # registers the builders without TensorFlow

    source = tfds.data_source("isic2017/segmentation_512", data_dir=sys.argv[1])
    ex = source["train"][1]
    assert "tensorflow" not in sys.modules
    print(json.dumps({
        "sizes": [len(source["train"]), len(source["validation"])],
        "image_id": ex["image_id"].decode(), "label": int(ex["label"]),
        "image": list(ex["image"].shape), "mask": list(ex["segmentation_mask"].shape),
        "mask_sum": int(ex["segmentation_mask"].sum()),
    }))
    """
)


def test_array_record_read_without_tensorflow(tmp_path):
    builder = _prepare(
        isic2017.Builder,
        ISIC_DUMMY,
        tmp_path / "data",
        config="segmentation_512",
        file_format="array_record",
    )
    assert list((tmp_path / "data").rglob("*.array_record-*"))
    expected = {ex["image_id"].decode(): ex for ex in builder.as_data_source()["train"]}
    script = tmp_path / "reader.py"
    script.write_text(_TF_FREE_READER)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["sizes"] == [3, 2]
    want = expected[got["image_id"]]
    assert got["label"] == want["label"]
    assert got["image"] == list(want["image"].shape)
    assert got["mask"] == list(want["segmentation_mask"].shape)
    assert got["mask_sum"] == int(want["segmentation_mask"].sum()) > 0


def test_tfds_load_by_name(tmp_path):
    """`import tfds_builders` registers the builders for `tfds.load` from any project."""
    import tfds_builders

    assert {"isic2016", "isic2017", "kaggle_fanconic", "ph2", "med_node", "derm7pt"} <= set(
        tfds_builders.BUILDERS
    )
    ds = tfds.load(
        "kaggle_fanconic",
        split="test",
        data_dir=str(tmp_path),
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir=str(FANCONIC_DUMMY))
        },
    )
    labels = sorted(int(ex["label"]) for ex in tfds.as_numpy(ds))
    assert labels == [0, 0, 1, 1]


def _tfds_cli() -> str | None:
    """The `tfds` command to test: $TFMELANOMA_TFDS_CLI (CI builds a side venv with the CLI's
    extra needs), else this environment's, if usable. tfds 4.9.10's `tfds` command imports
    apache_beam and mlcroissant at start-up, and apache-beam downgrades protobuf/pyarrow/Pillow in
    an existing environment, so the project venv does not install them."""
    import importlib.util
    import os

    if os.environ.get("TFMELANOMA_TFDS_CLI"):
        return os.environ["TFMELANOMA_TFDS_CLI"]
    if all(importlib.util.find_spec(m) for m in ("apache_beam", "mlcroissant")):
        return str(Path(sys.executable).parent / "tfds")
    return None


@pytest.mark.skipif(
    _tfds_cli() is None,
    reason="the `tfds` CLI needs apache-beam and mlcroissant (or set TFMELANOMA_TFDS_CLI)",
)
def test_tfds_build_on_builder_folder(tmp_path):
    folder = Path(fanconic.__file__).parent
    out = subprocess.run(
        [
            _tfds_cli(),
            "build",
            str(folder),
            f"--manual_dir={FANCONIC_DUMMY}",
            f"--data_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    builder = tfds.builder_from_directory(str(tmp_path / "kaggle_fanconic" / "original" / "1.0.0"))
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {"train": 5, "test": 4}


def test_missing_metadata_csvs_are_named_and_leave_age_and_sex_unknown(tmp_path, caplog):
    """Issue #19: the metadata CSVs hold only age and sex, so they are optional (a warning each)."""
    manual = _copy(ISIC_DUMMY, tmp_path)
    gone = [
        manual / f"{stem}_Data" / f"{stem}_Data_metadata.csv"
        for stem in ("ISIC-2017_Training", "ISIC-2017_Test_v2")
    ]
    for path in gone:
        path.unlink()
    with caplog.at_level(logging.WARNING):
        builder = _prepare(isic2017.Builder, manual, tmp_path / "data")
    assert all(str(path) in caplog.text for path in gone)
    assert _split_sizes(builder) == {"train": 3, "validation": 2, "test": 2}
