"""PH2 as real copies ship it: the xlsx table, a tab-separated CRLF txt, 24-bit top-down BMP masks.

The layout copies a real `PH2Dataset/` (file names, the sheet "Folha1" with its legend block and
two-row header at rows 12-13, `PH2_dataset2.xlsx`, `Readme.txt`); the xlsx is written here with
openpyxl, so it is a real Excel file. The segment tool reads the same folder the builder does.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.ph2 import ph2_dataset_builder as ph2
from tfds_builders.ph2 import tables
from tfmelanoma.errors import LabelError

openpyxl = pytest.importorskip("openpyxl")

DUMMY = Path(ph2.__file__).parent / "dummy_data"
CASES = {"IMD002": "common_nevus", "IMD003": "atypical_nevus", "IMD058": "melanoma"}
CASES["IMD061"] = "common_nevus"
_COLUMN = {"common_nevus": 3, "atypical_nevus": 4, "melanoma": 5}  # C, D, E (1-based)


def write_xlsx(path: Path, cases: dict[str, str], sheet: str = "Folha1") -> None:
    """An xlsx laid out like the real `PH2_dataset.xlsx` (legend rows 1-10, header 12-13)."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    ws["A1"] = "PH2 Database"
    ws["A3"] = "Legend:"
    ws["A4"] = "Asymmetry: 0 - Fully Symmetric; 1 - Symetric in 1 axis; 2 - Fully Asymmetric"
    ws["A6"] = "Pigment Network, Dots/Globules: A - Absent; AT - Atypical; T - Typical"
    ws["A8"] = "Streaks, Regression Areas, Blue-Whitish Veil: A - Absent; P - Present"
    ws["A10"] = (
        "Colors: 1 - White; 2 - Red; 3 - Light-Brown; 4 - Dark-Brown; 5 - Blue-Gray; 6 - Black"
    )
    ws["C12"] = "Clinical Diagnosis"
    ws.merge_cells("C12:E12")
    header = [
        "Image Name",
        "Histological Diagnosis",
        "Common Nevus",
        "Atypical Nevus",
        "Melanoma",
        "Asymmetry\n(0/1/2)",
        "Pigment Network\n(AT/T)",
        "Dots/Globules\n(A/AT/T)",
        "Streaks\n(A/P)",
        "Regression Areas\n(A/P)",
        "Blue-Whitish Veil\n(A/P)",
        "Colors: White",
    ]
    for col, name in enumerate(header, start=1):
        ws.cell(row=13, column=col, value=name)
    for row, (case, diagnosis) in enumerate(cases.items(), start=14):
        ws.cell(row=row, column=1, value=case)
        ws.cell(row=row, column=2, value="Melanoma" if diagnosis == "melanoma" else None)
        ws.cell(row=row, column=_COLUMN[diagnosis], value="X")
        ws.cell(row=row, column=6, value=0)
        ws.cell(row=row, column=7, value="T")
    book.save(path)


def write_bmp_top_down(path: Path, mask: np.ndarray) -> None:
    """A 24-bit uncompressed Windows BMP stored top-down (negative height), 0/255 values."""
    height, width = mask.shape
    rgb = np.repeat(mask[..., None], 3, axis=-1)[..., ::-1]  # BGR
    stride = (width * 3 + 3) // 4 * 4
    rows = b"".join(r.tobytes() + b"\0" * (stride - width * 3) for r in rgb.astype(np.uint8))
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    path.write_bytes(b"BM" + struct.pack("<IHHI", 54 + len(rows), 0, 0, 54) + info + rows)


def real_layout(tmp_path: Path, *, txt: str = "tab") -> Path:
    """`<tmp>/manual/PH2Dataset/` as in a real copy; returns the manual folder."""
    manual = tmp_path / "manual"
    shutil.copytree(DUMMY, manual)
    root = manual / "PH2Dataset"
    write_xlsx(root / tables.XLSX, CASES)
    write_xlsx(root / "PH2_dataset2.xlsx", CASES)
    (root / "Readme.txt").write_text("PH2 Database\r\n", newline="")
    if txt == "tab":
        lines = ["Name\tClinical Diagnosis\tAsymmetry"]
        codes = {"common_nevus": "0", "atypical_nevus": "1", "melanoma": "2"}
        lines += [f"{c}\t{codes[d]}\t0" for c, d in CASES.items()]
        (root / tables.TXT).write_text("\r\n".join(lines) + "\r\n", newline="")
    for case in CASES:
        mask_path = root / "PH2 Dataset images" / case / f"{case}_lesion" / f"{case}_lesion.bmp"
        mask = np.zeros((7, 10), np.uint8)
        mask[1:4, 2:6] = 255  # top rows: a top-down BMP read upside down would move it
        write_bmp_top_down(mask_path, mask)
    return manual


def _prepare(manual: Path, data_dir: Path, config: str = "segmentation_original"):
    builder = ph2.Builder(data_dir=str(data_dir), config=config, file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    return {ex["image_id"].decode(): ex for ex in builder.as_data_source()["train"]}


def _diagnoses(examples) -> dict[str, str]:
    return {k: ex["diagnosis"].decode() for k, ex in examples.items()}


def test_xlsx_labels_and_top_down_bmp_masks(tmp_path):
    manual = real_layout(tmp_path)
    (manual / "PH2Dataset" / tables.TXT).write_text("garbage\n")  # the xlsx wins
    examples = _prepare(manual, tmp_path / "data")
    assert _diagnoses(examples) == CASES
    mask = examples["IMD002"]["segmentation_mask"][..., 0]
    assert mask.shape == (7, 10) and set(np.unique(mask)) == {0, 255}
    assert mask[1:4, 2:6].all() and mask.sum() == 12 * 255


def test_manual_dir_may_be_the_ph2dataset_folder(tmp_path):
    manual = real_layout(tmp_path)
    examples = _prepare(manual / "PH2Dataset", tmp_path / "data", "classification_512")
    assert _diagnoses(examples) == CASES


@pytest.mark.parametrize("form", ["tab", "bars"])
def test_txt_fallback_both_forms(tmp_path, form):
    manual = real_layout(tmp_path, txt=form)
    (manual / "PH2Dataset" / tables.XLSX).unlink()
    table = manual / "PH2Dataset" / tables.TXT
    assert ("\t" in table.read_text()) == (form == "tab")
    assert tables.read_labels(table)[0] == CASES


def test_no_table_names_both_files(tmp_path):
    manual = real_layout(tmp_path)
    for name in (tables.XLSX, tables.TXT):
        (manual / "PH2Dataset" / name).unlink()
    with pytest.raises(common.MissingFilesError) as err:
        _prepare(manual, tmp_path / "data")
    assert tables.XLSX in str(err.value) and tables.TXT in str(err.value)


def test_xlsx_row_with_two_diagnoses_is_named(tmp_path):
    path = tmp_path / tables.XLSX
    write_xlsx(path, CASES)
    book = openpyxl.load_workbook(path)
    book["Folha1"]["E15"] = "X"  # IMD003 marked atypical nevus and melanoma
    book.save(path)
    with pytest.raises(LabelError, match=r"row 15\): IMD003 has 2 clinical diagnoses"):
        tables.read_labels(path)


def test_txt_without_header_is_refused(tmp_path):
    path = tmp_path / tables.TXT
    path.write_text("IMD002\t0\t0\r\n")
    with pytest.raises(tables.TableError, match="no header line"):
        tables.read_labels(path)


def test_segment_tool_reads_the_builder_folder(tmp_path):
    from tfmelanoma.data import segmentation_sources as sources  # noqa: PLC0415

    manual = real_layout(tmp_path)
    builder = sources.prepared_builder(
        "ph2", str(tmp_path / "tfds"), str(manual), file_format="array_record"
    )
    n = builder.info.splits["train"].num_examples
    split = sources.SegmentationSplit(
        "ph2:train", tuple(range(n)), None, "ph2/segmentation_512", "train", str(tmp_path / "tfds")
    )
    items = {str(i["image_id"], "utf-8") if isinstance(i["image_id"], bytes) else i["image_id"]: i
             for i in split.as_data_source()}  # fmt: skip
    assert sorted(items) == sorted(CASES)
    for item in items.values():  # the BMP mask, top-down, as the builder stored it
        mask = item["segmentation_mask"]
        assert mask.shape == (7, 10, 1) and mask[1:4, 2:6].all() and mask.sum() == 12 * 255


def test_segment_tf_data_pipeline_decodes_bmp_pairs(tmp_path):
    from tfmelanoma.data import segmentation as data  # noqa: PLC0415
    from tfmelanoma.data.segmentation_sources import folder_pairs  # noqa: PLC0415

    images, masks_dir = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks_dir.mkdir()
    cases = real_layout(tmp_path / "ph2") / "PH2Dataset" / "PH2 Dataset images"
    for case in sorted(CASES):
        base = cases / case
        shutil.copy(base / f"{case}_Dermoscopic_Image" / f"{case}.bmp", images / f"{case}.bmp")
        shutil.copy(base / f"{case}_lesion" / f"{case}_lesion.bmp", masks_dir / f"{case}.bmp")
    pairs = folder_pairs(images, masks_dir, mask_name="{id}.bmp")
    images_batch, masks = next(iter(data.make_dataset(pairs, 8, 4)))
    assert images_batch.shape == (4, 8, 8, 3) and masks.shape == (4, 8, 8, 1)
    assert set(np.unique(masks.numpy())) == {0.0, 1.0}
