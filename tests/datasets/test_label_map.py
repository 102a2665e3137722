"""The label-mapping table: complete for every builder and every value in the real CSVs; docs sync."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tfmelanoma import labels
from tfmelanoma.datasets import label_table

REPO = Path(__file__).resolve().parents[2]

# Every dataset the project builds a classifier dataset for (docs/architecture.md, issue 3).
PLANNED = {
    "isic2016", "isic2017", "isic2018", "isic2019", "isic2020", "ph2", "med_node", "derm7pt",
    "pad_ufes_20", "kaggle_fanconic", "kaggle_melanoma_10000", "isic_archive",
}  # fmt: skip


def test_table_covers_every_planned_and_registered_builder():
    import tfds_builders

    assert set(labels.datasets()) == PLANNED
    assert set(tfds_builders.BUILDERS) <= PLANNED | {"sample"}


def test_every_row_is_consistent():
    for m in labels.label_table().values():
        # A row maps to melanoma exactly when its harmonised class is MEL.
        assert (m.binary == "melanoma") == (m.harmonised == "MEL"), m


def test_unmapped_value_error_names_dataset_and_value():
    with pytest.raises(labels.UnmappedDiagnosisError, match=r"'isic2017'.*'lupus'"):
        labels.map_diagnosis("isic2017", "lupus")
    with pytest.raises(labels.UnmappedDiagnosisError, match="no rows"):
        labels.source_diagnoses("no_such_dataset")


@pytest.mark.realdata
def test_isic2019_ground_truth_columns(shared_data):
    gt = pd.read_csv(shared_data / "csv" / "ISIC2019" / "ISIC_2019_Training_GroundTruth.csv")
    assert set(gt.columns.drop("image")) == set(labels.source_diagnoses("isic2019"))
    for column in gt.columns.drop("image"):
        assert labels.map_diagnosis("isic2019", column).harmonised == column


@pytest.mark.realdata
@pytest.mark.parametrize(
    "file",
    [
        "ISIC_2020_Training_GroundTruth.csv",
        "ISIC_2020_Training_GroundTruth_v2.csv",
        "siim_isic_kaggle_train.csv",
    ],
)
def test_isic2020_diagnoses_and_targets(shared_data, file):
    gt = pd.read_csv(shared_data / "csv" / "ISIC2020" / file)
    binary = gt["diagnosis"].map(lambda d: labels.map_diagnosis("isic2020", d).binary)
    # The official target is 1 exactly for the rows we call melanoma.
    assert ((binary == "melanoma") == (gt["target"] == 1)).all()


@pytest.mark.realdata
def test_ham10000_dx_codes(shared_data):
    meta = pd.read_csv(shared_data / "csv" / "HAM10000" / "HAM10000_metadata.csv")
    assert set(meta["dx"]) == set(labels.source_diagnoses("isic2018"))
    assert {labels.map_diagnosis("isic2018", "mel").binary} == {"melanoma"}


@pytest.mark.realdata
def test_isic_archive_and_isic2017_values(shared_data):
    seen = set()
    for path in (shared_data / "isic_archive_uda1" / "metadata").glob("*.json"):
        clinical = json.loads(path.read_text())["meta"]["clinical"]
        diagnosis = clinical.get("diagnosis") or f"unknown_{clinical['benign_malignant']}"
        seen.add(diagnosis)
        expected = "melanoma" if clinical.get("benign_malignant") == "malignant" else None
        if expected:
            assert labels.map_diagnosis("isic_archive", diagnosis).binary == expected
    assert seen <= set(labels.source_diagnoses("isic_archive"))
    gt = pd.read_csv(shared_data / "isic2017" / "ISIC-2017_Training_Part3_GroundTruth.csv")
    assert gt["melanoma"].sum() == 374
    assert {"melanoma", "seborrheic_keratosis", "nevus"} == set(labels.source_diagnoses("isic2017"))


def test_docs_table_is_in_sync():
    doc = REPO / "docs" / "datasets.md"
    assert label_table.sync_docs(doc, check=True), (
        "docs/datasets.md label table is stale: run "
        "`python -m tfmelanoma.datasets label-table --write docs/datasets.md`"
    )


def test_rendered_table_has_one_line_per_row():
    table = label_table.render_label_table().splitlines()
    assert len(table) == 2 + len(labels.label_table())
    assert table[0].startswith("| dataset | source diagnosis | binary | harmonised |")
