"""One label-mapping table for every dataset: source diagnosis -> binary and harmonised classes.

The table lives in `label_map.csv` beside this module (data, not code), so builders, the merge step
and the docs all read the same rows. Every source value must be listed: an unmapped value is an
error naming the dataset and the value, never a silent default. The label values of the
ground-truth files (0/1 flags, mutually exclusive class columns, one label per image id) go
through `binary_value`, `one_hot_label` and `unique_labels`, which refuse anything else with a
`LabelError` naming the file, line, id and value.

This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TypeVar

from tfmelanoma.errors import LabelError
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)
T = TypeVar("T")

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


# --- Label values read from ground-truth files: 0/1 flags, exclusive columns, one label per id ---

_BINARY_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}


def binary_value(
    value: object, *, where: str, what: str, image_id: str = "", names: Sequence[str] = ()
) -> int:
    """A 0/1 label flag from a label file ("0", "1", "0.0", "1.0"; `names[0]`/`names[1]` too).

    Args:
        value: the cell as read (surrounding spaces and case are ignored).
        where: the file and line, e.g. "labels.csv:12", for the message.
        what: the column or field, e.g. "target".
        image_id: the row's id, for the message.
        names: optional words for 0 and 1 (e.g. ("benign", "malignant")).

    Raises:
        LabelError: any other value (`2.0`, `yes`, empty), naming file, line, id and value.
    """
    text = str(value).strip().lower() if value is not None else ""
    accepted = {**_BINARY_VALUES, **{n.lower(): i for i, n in enumerate(names)}}
    if text not in accepted:
        of = f" of {image_id}" if image_id else ""
        raise LabelError(
            f"{where}: {what} {value!r}{of} is not one of {sorted(accepted, key=accepted.get)}"
        )
    return accepted[text]


def one_hot_label(
    row: Mapping[str, object],
    columns: Sequence[str],
    *,
    where: str,
    image_id: str,
    none: str | None = None,
) -> str:
    """The one column of `columns` set to 1 in `row` (mutually exclusive classes).

    Args:
        row: the CSV row (column -> cell).
        columns: the class columns; each cell must be 0/1 (`binary_value`).
        where: file and line, for the message.
        image_id: the row's id, for the message.
        none: the class of a row with every column 0 (e.g. ISIC 2017's "nevus"); None means
            exactly one column must be 1.

    Raises:
        LabelError: a cell that is not 0/1 (e.g. `2.0`), two or more classes marked, or none
            marked when `none` is None; naming file, line, id and values.
    """
    rule = "exactly one 1" if none is None else "at most one 1"
    expected = f"expected columns {', '.join(columns)} with 0/1 values and {rule}"
    hot = []
    for column in columns:
        try:
            if binary_value(row.get(column), where=where, what=column):
                hot.append(column)
        except LabelError:
            raise LabelError(
                f"{where}: {expected}; {image_id} has {column}={row.get(column)!r}"
            ) from None
    if len(hot) > 1:
        raise LabelError(
            f"{where}: {expected}; {image_id} is marked as {' and '.join(hot)} at once"
        )
    if not hot and none is None:
        raise LabelError(f"{where}: {expected}; {image_id} has no class marked")
    return hot[0] if hot else none


def unique_labels(entries: Iterable[tuple[str, T, str]], *, path: object) -> dict[str, T]:
    """One label per id from (id, label, where) entries of a label file, in file order.

    An id listed twice with the same label is kept once (a warning names both lines); with
    different labels the file cannot say which is right, so nothing is guessed.

    Raises:
        LabelError: an id with conflicting labels, naming the file, the id, both lines and labels.
    """
    labels: dict[str, T] = {}
    seen_at: dict[str, str] = {}
    for image_id, label, where in entries:
        if image_id not in labels:
            labels[image_id] = label
            seen_at[image_id] = where
        elif labels[image_id] != label:
            raise LabelError(
                f"{path}: {image_id} is listed twice with different labels: "
                f"{seen_at[image_id]} says {labels[image_id]!r}, {where} says {label!r}; "
                "fix or remove one of the rows"
            )
        else:
            logger.warning(
                "%s: %s is listed twice with the same label (%s and %s); keeping one",
                path,
                image_id,
                seen_at[image_id],
                where,
            )
    return labels
