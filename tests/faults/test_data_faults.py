"""Faults in files that the toolkit reads: weights, label CSVs, image ids, masks.

Each test builds one bad input in `tmp_path`, in the form of the real download (file names,
header lines), and asserts both the message (it names the file and what was expected) and that
nothing wrong got through (no code ran, no example from outside the root, no silent label).
"""

from __future__ import annotations

import codecs
import collections
import importlib
import logging
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from tfds_builders import common
from tfds_builders.isic2017 import isic2017_dataset_builder as isic2017
from tfds_builders.isic2019 import isic2019_dataset_builder as isic2019
from tfds_builders.isic2020 import isic2020_dataset_builder as isic2020
from tfmelanoma.data import masks
from tfmelanoma.data import segmentation as seg_data
from tfmelanoma.data import segmentation_sources as files
from tfmelanoma.data.image_ops import resize_mask_np as resize_mask
from tfmelanoma.data.segmentation_numpy import SegmentationBatches
from tfmelanoma.data.segmentation_sources import FileSource
from tfmelanoma.errors import LabelError, UnsafePathError
from tfmelanoma.models.torch_checkpoint import load_torch_state_dict

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


# --- 1. Weights: every pickle in a .pth goes through a restricted unpickler ---


class _WritesFile:
    """Unpickling this calls `os.system("touch <marker>")` unless the unpickler refuses it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _legacy_records(marker, evil: str) -> list[object]:
    records = {
        "magic": _LEGACY_MAGIC,
        "protocol": 1001,
        "sys_info": {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}},
        "state_dict": collections.OrderedDict(),
        "keys": [],
    }
    records[evil] = _WritesFile(marker)
    return list(records.values())


@pytest.mark.parametrize("evil", ["magic", "protocol", "sys_info", "keys", "state_dict"])
def test_legacy_pth_record_with_code_is_refused(tmp_path, evil):
    marker = tmp_path / "pwned"
    weights = tmp_path / "evil.pth"
    with open(weights, "wb") as f:
        for record in _legacy_records(marker, evil):
            pickle.dump(record, f, protocol=2)
    with pytest.raises(ValueError, match=r"evil\.pth.*refusing to load posix\.system") as info:
        load_torch_state_dict(weights)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert not marker.exists(), "the pickle's code ran"


def test_legacy_pth_record_of_the_wrong_type_is_refused(tmp_path):
    weights = tmp_path / "odd.pth"
    with open(weights, "wb") as f:
        pickle.dump(_LEGACY_MAGIC, f)
        pickle.dump(1001, f)
        pickle.dump(["little_endian"], f)  # a list where the system info dict belongs
    with pytest.raises(ValueError, match=r"odd\.pth: the system info record .*not a dict"):
        load_torch_state_dict(weights)


def test_zip_pth_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    weights = tmp_path / "evil.pt"
    with zipfile.ZipFile(weights, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(_WritesFile(marker), protocol=2))
        zf.writestr("archive/version", "3\n")
    with pytest.raises(ValueError, match=r"evil\.pt.*refusing to load posix\.system"):
        load_torch_state_dict(weights)
    assert not marker.exists(), "the pickle's code ran"


def test_tensor_view_past_its_storage_is_refused(tmp_path):
    """A crafted size/stride would make NumPy read memory outside the file's buffer."""
    # OrderedDict(w=_rebuild_tensor_v2(<persistent storage "0" of 4 floats>, 0, (1000,), (1,)))
    body = (
        b"\x80\x02ccollections\nOrderedDict\n)RX\x01\x00\x00\x00w"
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
        b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
        b"K\x00M\xe8\x03\x85K\x01\x85tRs."
    )
    weights = tmp_path / "big.pt"
    with zipfile.ZipFile(weights, "w") as zf:
        zf.writestr("archive/data.pkl", body)
        zf.writestr("archive/data/0", b"\0" * 16)  # 4 float32
    with pytest.raises(ValueError, match=r"big\.pt: tensor view .* past its storage 0"):
        load_torch_state_dict(weights)
    # The same record with a size that fits loads.
    with zipfile.ZipFile(weights, "w") as zf:
        zf.writestr("archive/data.pkl", body.replace(b"M\xe8\x03", b"K\x04\x00"[:2]))
        zf.writestr("archive/data/0", b"\0" * 16)
    assert load_torch_state_dict(weights)["w"].shape == (4,)


# --- Builders: fixtures copied from each builder's dummy_data/ (the official archive layout) ---

BUILDERS_DIR = Path(common.__file__).parent
TRAIN = "ISIC-2017_Training"


def _manual(tmp_path: Path, dataset: str = "isic2017") -> Path:
    manual = tmp_path / "manual"
    shutil.copytree(BUILDERS_DIR / dataset / "dummy_data", manual)
    return manual


def _prepare(module, manual: Path, data_dir: Path, config: str, **kwargs):
    builder = module.Builder(data_dir=str(data_dir), config=config, **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    return builder


def _examples(builder, split: str) -> dict[str, dict]:
    ds = builder.as_dataset(split=split)
    return {ex["image_id"].decode(): ex for ex in tfds.as_numpy(ds)}


def _nothing_prepared(data_dir: Path) -> bool:
    return not [p for p in data_dir.rglob("*") if p.name == "1.0.0" or "incomplete" in p.name]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, path)
    path.write_text(text.replace(old, new))


# --- 2. Ids from label files are file names inside their folder, never paths out of it ---


def test_isic2017_id_with_dotdot_cannot_pull_a_file_from_outside(tmp_path):
    """A train row `../../good/ISIC-2017_Validation_Data/ISIC_0001769` pulled a validation image."""
    manual = _manual(tmp_path)
    outside = tmp_path / "good" / "ISIC-2017_Validation_Data"
    outside.mkdir(parents=True)
    shutil.copy(manual / "ISIC-2017_Validation_Data" / "ISIC_0001769.jpg", outside)
    value = "../../good/ISIC-2017_Validation_Data/ISIC_0001769"
    labels_csv = manual / f"{TRAIN}_Part3_GroundTruth.csv"
    _edit(labels_csv, "ISIC_0000002,0.0,1.0", f"ISIC_0000002,0.0,1.0\n{value},1.0,0.0")
    with pytest.raises(UnsafePathError) as err:
        _prepare(isic2017, manual, tmp_path / "data", "classification_512")
    message = str(err.value)
    assert f"{labels_csv}:5: " in message and repr(f"{value}.jpg") in message
    assert "points outside" in message
    assert _nothing_prepared(tmp_path / "data")


def test_isic2017_absolute_id_cannot_replace_the_folder(tmp_path):
    manual = _manual(tmp_path)
    absolute = str(manual / "ISIC-2017_Validation_Data" / "ISIC_0001769")
    labels_csv = manual / f"{TRAIN}_Part3_GroundTruth.csv"
    _edit(labels_csv, "ISIC_0000002,0.0,1.0", f"{absolute},0.0,1.0")
    with pytest.raises(UnsafePathError, match=re.escape(f"{labels_csv}:4: ")) as err:
        _prepare(isic2017, manual, tmp_path / "data", "classification_512")
    assert "is not a relative path" in str(err.value)
    assert _nothing_prepared(tmp_path / "data")


@pytest.mark.parametrize(
    "dataset, config, label_file, old, new, value",
    [
        (
            "isic2016",
            "segmentation_512",
            "ISBI2016_ISIC_Part3_Training_GroundTruth.csv",
            "ISIC_0000004,benign",
            "ISIC_0000004/../../../ISBI2016_ISIC_Part1_Test_Data/ISIC_0000003,benign",
            "ISIC_0000004/../../../ISBI2016_ISIC_Part1_Test_Data/ISIC_0000003.jpg",
        ),
        (
            "ph2",
            "classification_512",
            "PH2Dataset/PH2_dataset.txt",
            "|| IMD061 ||",
            "|| IMD061/../../../../outside ||",
            "IMD061/../../../../outside/IMD061",
        ),
        (
            "derm7pt",
            "dermoscopic_512",
            "release_v0/meta/meta.csv",
            "Aal/Aal001d.jpg",
            "../../../outside/Aal001d.jpg",
            "../../../outside/Aal001d.jpg",
        ),
    ],
)
def test_other_builders_refuse_ids_that_leave_their_folder(
    tmp_path, dataset, config, label_file, old, new, value
):
    module = importlib.import_module(f"tfds_builders.{dataset}.{dataset}_dataset_builder")
    manual = _manual(tmp_path, dataset)
    _edit(manual / label_file, old, new)
    with pytest.raises(UnsafePathError) as err:
        _prepare(module, manual, tmp_path / "data", config)
    message = str(err.value)
    assert f"{manual / label_file}:" in message  # the file and its line
    assert repr(value)[:-1] in message  # the value as read (ph2: the paths made of the case name)
    assert "outside" in message and "expected a file name" in message
    assert _nothing_prepared(tmp_path / "data")


def test_isic2019_and_isic2020_rows_refuse_ids_that_leave_the_image_folder(tmp_path):
    """Their rows are later matched to the folder's listing; the row's own path is checked too."""
    images = tmp_path / "ISIC_2019_Training_Input"
    images.mkdir()
    gt = tmp_path / "ISIC_2019_Training_GroundTruth.csv"
    gt.write_text(
        "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK\n"
        "../ISIC_2020_Training_JPEG/train/ISIC_0149568,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0\n"
    )
    meta = tmp_path / "ISIC_2019_Training_Metadata.csv"
    meta.write_text("image,age_approx,anatom_site_general,lesion_id,sex\n")
    with pytest.raises(UnsafePathError, match=re.escape(f"{gt}:2: '../ISIC_2020")):
        isic2019.read_rows(images, gt, meta)
    gt = tmp_path / "ISIC_2020_Training_GroundTruth_v2.csv"
    gt.write_text(
        "image_name,patient_id,lesion_id,sex,age_approx,anatom_site_general_challenge,"
        "diagnosis,benign_malignant,target\n"
        "/etc/ISIC_0149568,IP_0,IL_0,male,45.0,torso,melanoma,malignant,1\n"
    )
    with pytest.raises(UnsafePathError, match=re.escape(f"{gt}:2: '/etc/ISIC_0149568.jpg'")):
        isic2020.read_rows(images, gt)


# --- 3. A byte-order mark is not part of the first column's name ---


def test_isic2017_csvs_saved_with_a_bom_prepare_the_same(tmp_path):
    manual = _manual(tmp_path)
    for csv_file in [
        manual / f"{TRAIN}_Part3_GroundTruth.csv",
        manual / f"{TRAIN}_Data" / f"{TRAIN}_Data_metadata.csv",
    ]:
        csv_file.write_bytes(codecs.BOM_UTF8 + csv_file.read_bytes())
    builder = _prepare(isic2017, manual, tmp_path / "data", "classification_512")
    train = _examples(builder, "train")
    assert {k: ex["diagnosis"].decode() for k, ex in train.items()} == {
        "ISIC_0000000": "nevus",
        "ISIC_0000001": "melanoma",
        "ISIC_0000002": "seborrheic_keratosis",
    }
    assert train["ISIC_0000000"]["age"] == 55  # the metadata CSV was read, BOM and all


def test_missing_column_names_file_column_and_columns_found(tmp_path):
    manual = _manual(tmp_path)
    labels_csv = manual / f"{TRAIN}_Part3_GroundTruth.csv"
    _edit(labels_csv, "image_id,melanoma,", "image,melanoma,")
    with pytest.raises(common.MissingColumnError) as err:
        _prepare(isic2017, manual, tmp_path / "data", "classification_512")
    message = str(err.value)
    assert str(labels_csv) in message
    assert "missing column(s) ['image_id']" in message
    assert "found columns ['image', 'melanoma', 'seborrheic_keratosis']" in message
    assert _nothing_prepared(tmp_path / "data")


# --- 4. Labels: only 0/1, one class per row, one label per image ---


@pytest.mark.parametrize(
    "row, needles",
    [
        ("ISIC_0000001,2.0,0.0", ["melanoma='2.0'", "with 0/1 values"]),
        ("ISIC_0000001,1.0,1.0", ["marked as melanoma and seborrheic_keratosis at once"]),
    ],
)
def test_isic2017_label_that_is_not_one_class_is_refused(tmp_path, row, needles):
    manual = _manual(tmp_path)
    labels_csv = manual / f"{TRAIN}_Part3_GroundTruth.csv"
    _edit(labels_csv, "ISIC_0000001,1.0,0.0", row)
    with pytest.raises(LabelError) as err:
        _prepare(isic2017, manual, tmp_path / "data", "classification_512")
    message = str(err.value)
    assert f"{labels_csv}:3:" in message and "ISIC_0000001" in message
    for needle in needles:
        assert needle in message
    assert _nothing_prepared(tmp_path / "data")  # no example went in as melanoma


def test_isic2017_duplicate_id_with_another_label_is_refused(tmp_path):
    manual = _manual(tmp_path)
    labels_csv = manual / f"{TRAIN}_Part3_GroundTruth.csv"
    _edit(labels_csv, "ISIC_0000002,0.0,1.0", "ISIC_0000002,0.0,1.0\nISIC_0000001,0.0,0.0")
    with pytest.raises(LabelError) as err:
        _prepare(isic2017, manual, tmp_path / "data", "classification_512")
    message = str(err.value)
    assert str(labels_csv) in message and "ISIC_0000001 is listed twice" in message
    assert "line 3 says 'melanoma', line 5 says 'nevus'" in message
    assert _nothing_prepared(tmp_path / "data")


def test_isic2017_identical_duplicate_is_kept_once_with_a_warning(tmp_path, caplog):
    manual = _manual(tmp_path)
    labels_csv = manual / f"{TRAIN}_Part3_GroundTruth.csv"
    _edit(labels_csv, "ISIC_0000002,0.0,1.0", "ISIC_0000002,0.0,1.0\nISIC_0000001,1,0")
    with caplog.at_level(logging.WARNING):
        builder = _prepare(isic2017, manual, tmp_path / "data", "classification_512")
    train = _examples(builder, "train")
    assert len(train) == 3 and train["ISIC_0000001"]["label"] == 1
    assert "ISIC_0000001 is listed twice with the same label (line 3 and line 5)" in caplog.text


@pytest.mark.parametrize(
    "dataset, label_file, old, new, needle",
    [
        (
            "isic2016",
            "ISBI2016_ISIC_Part3_Test_GroundTruth.csv",
            "ISIC_0000012,1.0",
            "ISIC_0000012,2.0",
            "label '2.0' of ISIC_0000012",
        ),
        (
            "isic2016",
            "ISBI2016_ISIC_Part3_Test_GroundTruth.csv",
            "ISIC_0000012,1.0",
            "ISIC_0000012,1.0\nISIC_0000003,1",
            "ISIC_0000003 is listed twice with different labels",
        ),
        (
            "ph2",
            "PH2Dataset/PH2_dataset.txt",
            "|| IMD061 ||                        ||                  0 ||",
            "|| IMD061 ||                        ||                  0 ||\n"
            "|| IMD061 ||                        ||                  2 ||",
            "IMD061 is listed twice with different labels",
        ),
    ],
)
def test_other_builders_refuse_bad_or_conflicting_labels(
    tmp_path, dataset, label_file, old, new, needle
):
    module = importlib.import_module(f"tfds_builders.{dataset}.{dataset}_dataset_builder")
    manual = _manual(tmp_path, dataset)
    _edit(manual / label_file, old, new)
    with pytest.raises(LabelError) as err:
        _prepare(module, manual, tmp_path / "data", "classification_512")
    assert str(manual / label_file) in str(err.value) and needle in str(err.value)
    assert _nothing_prepared(tmp_path / "data")


def test_one_hot_ground_truths_refuse_two_classes_and_conflicting_duplicates(tmp_path):
    """ISIC 2018 / 2019 read their one-hot rows through the same function."""
    gt = tmp_path / "ISIC_2019_Training_GroundTruth.csv"
    header = "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK\n"
    meta = tmp_path / "ISIC_2019_Training_Metadata.csv"
    meta.write_text("image,age_approx,anatom_site_general,lesion_id,sex\n")
    gt.write_text(header + "ISIC_0000000,2.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0\n")
    rows, errors = isic2019.read_rows(tmp_path, gt, meta)
    assert rows == [] and "MEL='2.0'" in str(errors["ISIC_0000000"])
    gt.write_text(
        header
        + "ISIC_0000000,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0\n"
        + "ISIC_0000000,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0\n"
    )
    with pytest.raises(LabelError, match=r"ISIC_0000000 is listed twice .*'NV'.*'MEL'"):
        isic2019.read_rows(tmp_path, gt, meta)


# --- 5. Masks: 0/1 masks are masks, a mask of another size is refused ---


def test_isic2017_mask_with_values_0_1_is_not_all_background(tmp_path):
    manual = _manual(tmp_path)
    mask_file = manual / f"{TRAIN}_Part1_GroundTruth" / "ISIC_0000001_segmentation.png"
    as_255 = np.asarray(Image.open(mask_file))
    assert set(np.unique(as_255)) == {0, 255}
    Image.fromarray((as_255 // 255).astype(np.uint8)).save(mask_file)
    builder = _prepare(isic2017, manual, tmp_path / "data", "segmentation_original")
    mask = _examples(builder, "train")["ISIC_0000001"]["segmentation_mask"][..., 0]
    np.testing.assert_array_equal(mask, as_255)


def test_isic2017_mask_of_another_size_is_refused(tmp_path):
    manual = _manual(tmp_path)
    mask_file = manual / f"{TRAIN}_Part1_GroundTruth" / "ISIC_0000001_segmentation.png"
    Image.fromarray(np.full((4, 10), 255, np.uint8)).save(mask_file)  # image is 14x10
    with pytest.raises(LabelError) as err:
        _prepare(isic2017, manual, tmp_path / "data", "segmentation_512")
    message = str(err.value)
    assert str(mask_file) in message and "mask is 10x4" in message
    assert str(manual / f"{TRAIN}_Data" / "ISIC_0000001.jpg") in message and "is 14x10" in message
    assert _nothing_prepared(tmp_path / "data")


def _lesion(h=12, w=16) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[3:9, 4:13] = 1
    return mask


@pytest.mark.parametrize(
    "suffix, mode, scale",
    [
        (".png", "L", 255),
        (".png", "L", 1),
        (".png", "1", 255),
        (".bmp", "L", 255),
        (".bmp", "RGB", 255),
        (".tif", "L", 1),
        (".jpg", "L", 255),  # lossy: grey edges, thresholded at half range
    ],
)
def test_read_mask_decodes_every_format_to_the_same_binary_mask(tmp_path, suffix, mode, scale):
    path = tmp_path / f"m{suffix}"
    img = Image.fromarray(_lesion() * np.uint8(scale))
    img.convert(mode).save(path, **({"quality": 70} if suffix == ".jpg" else {}))
    np.testing.assert_array_equal(masks.read_mask(path), _lesion())


def test_segmentation_pipelines_read_masks_one_way(tmp_path):
    """tf.data and NumPy pipelines: a 0/1 mask is a lesion; a mask of another size is refused."""
    images, mask_dir = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    mask_dir.mkdir()
    Image.fromarray(np.full((12, 16, 3), 90, np.uint8)).save(images / "c0.png")
    Image.fromarray(_lesion()).save(mask_dir / "c0.png")  # values 0/1
    pairs = files.folder_pairs(images, mask_dir)
    expected = resize_mask(_lesion()[..., None].astype(np.float32), 8)
    _, tf_masks = next(iter(seg_data.make_dataset(pairs, 8, 1, cache=False)))
    np.testing.assert_array_equal(tf_masks[0].numpy(), expected)
    np_masks = SegmentationBatches(FileSource(pairs), image_size=8, batch_size=1)[0][1]
    np.testing.assert_array_equal(np_masks[0], expected)
    Image.fromarray(np.ones((40, 100), np.uint8)).save(mask_dir / "c0.png")
    with pytest.raises(
        LabelError, match=r"masks/c0\.png: mask is 100x40 .*images/c0\.png is 16x12"
    ):
        files.folder_pairs(images, mask_dir)
