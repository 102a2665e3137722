"""One label-mapping table for every dataset: source diagnosis -> binary and harmonised classes.

The table lives in `label_map.csv` beside this module (data, not code), so builders, the merge step
and the docs all read the same rows. Every source value must be listed: an unmapped value is an
error naming the dataset and the value, never a silent default.

This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

BINARY_CLASSES: tuple[str, ...] = ("non_melanoma", "melanoma")
"""Binary class names in ClassLabel order: index 1 is melanoma (the positive class)."""

HARMONISED_CLASSES: tuple[str, ...] = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
"""The ISIC 2019 nine classes, in the challenge's column order; UNK is unknown/other."""


class UnmappedDiagnosisError(KeyError):
    """A dataset's diagnosis value has no row in the label-mapping table."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0])


@dataclass(frozen=True)
class LabelMapping:
    """One row of the table.

    Attributes:
        dataset: builder name, e.g. "isic2017".
        source_diagnosis: the dataset's own diagnosis string, exactly as the builder emits it.
        binary: "melanoma" or "non_melanoma".
        harmonised: one of `HARMONISED_CLASSES`.
        note: why the row maps as it does, where that is not obvious.
    """

    dataset: str
    source_diagnosis: str
    binary: str
    harmonised: str
    note: str = ""

    @property
    def binary_index(self) -> int:
        return BINARY_CLASSES.index(self.binary)

    @property
    def harmonised_index(self) -> int:
        return HARMONISED_CLASSES.index(self.harmonised)


@functools.cache
def label_table() -> dict[tuple[str, str], LabelMapping]:
    """Reads and validates `label_map.csv`.

    Returns:
        A dict keyed by (dataset, source_diagnosis).

    Raises:
        ValueError: a row names an unknown class or repeats a key.
    """
    path = resources.files("tfmelanoma").joinpath("label_map.csv")
    table: dict[tuple[str, str], LabelMapping] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.DictReader(f), start=2):
            m = LabelMapping(**{k: (v or "") for k, v in row.items()})
            where = f"{path}:{line_no}"
            if m.binary not in BINARY_CLASSES:
                raise ValueError(f"{where}: binary {m.binary!r} is not one of {BINARY_CLASSES}")
            if m.harmonised not in HARMONISED_CLASSES:
                raise ValueError(
                    f"{where}: harmonised {m.harmonised!r} is not one of {HARMONISED_CLASSES}"
                )
            key = (m.dataset, m.source_diagnosis)
            if key in table:
                raise ValueError(f"{where}: duplicate row for dataset={key[0]!r} value={key[1]!r}")
            table[key] = m
    return table


def datasets() -> list[str]:
    """Names of the datasets that have rows in the table."""
    return sorted({d for d, _ in label_table()})


def source_diagnoses(dataset: str) -> list[str]:
    """Every source diagnosis value mapped for `dataset`, in table order."""
    values = [v for d, v in label_table() if d == dataset]
    if not values:
        raise UnmappedDiagnosisError(
            f"dataset {dataset!r} has no rows in the label map; known datasets: {datasets()}"
        )
    return values


def map_diagnosis(dataset: str, source_diagnosis: str) -> LabelMapping:
    """Looks up one value.

    Args:
        dataset: builder name.
        source_diagnosis: the dataset's own diagnosis string.

    Returns:
        The matching `LabelMapping`.

    Raises:
        UnmappedDiagnosisError: naming the dataset and the value, and listing the mapped values.
    """
    try:
        return label_table()[(dataset, source_diagnosis)]
    except KeyError:
        raise UnmappedDiagnosisError(
            f"label map has no row for dataset {dataset!r}, diagnosis {source_diagnosis!r}; "
            f"mapped values for {dataset!r}: {source_diagnoses(dataset)}"
        ) from None
