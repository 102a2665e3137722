"""PH2's label tables, in every form the download ships: `PH2_dataset.xlsx` and `PH2_dataset.txt`.

The official table is `PH2_dataset.xlsx` (sheet "Folha1"): a legend block, then a two-row header
("Clinical Diagnosis" above "Common Nevus | Atypical Nevus | Melanoma", next to "Image Name" and
"Histological Diagnosis"), then one row per image with an "X" under its clinical diagnosis.
`PH2_dataset.txt` exists in two forms: the `|| Name || ... || Clinical Diagnosis || ... ||` table
(0 common nevus, 1 atypical nevus, 2 melanoma) and, in some copies, a tab-separated file with CRLF
line ends ("Name<TAB>Clinical Diagnosis<TAB>Asymmetry"). Columns are found by their header names,
never by position.
"""

from __future__ import annotations

from pathlib import Path

from tfmelanoma import labels
from tfmelanoma.errors import LabelError, ToolMissingError

XLSX = "PH2_dataset.xlsx"
TXT = "PH2_dataset.txt"
# "Clinical Diagnosis" codes of the txt table.
CLINICAL_CODES = {"0": "common_nevus", "1": "atypical_nevus", "2": "melanoma"}
# xlsx: the column headers under "Clinical Diagnosis".
_XLSX_COLUMNS = {"common nevus": "common_nevus", "atypical nevus": "atypical_nevus"}
_XLSX_COLUMNS["melanoma"] = "melanoma"


class TableError(LabelError):
    """A PH2 table without the expected header or case rows; the message names the file."""


def read_labels(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Case name -> diagnosis (common_nevus / atypical_nevus / melanoma), and each case's row.

    Args:
        path: `PH2_dataset.xlsx`, or `PH2_dataset.txt` in its `||` or tab-separated form.

    Raises:
        TableError: no header with the name and diagnosis columns, or no case rows.
        tfmelanoma.errors.LabelError: an unknown diagnosis, or a case listed twice with different
            diagnoses (naming the file, row, case and value).
        tfmelanoma.errors.ToolMissingError: an xlsx without `openpyxl` installed.
    """
    xlsx = path.suffix.lower() == ".xlsx"
    rows = _xlsx_rows(path) if xlsx else _txt_rows(path)
    entries, lines = [], {}
    for line_no, case, diagnosis in rows:
        entries.append((case, diagnosis, f"{'row' if xlsx else 'line'} {line_no}"))
        lines.setdefault(case, line_no)
    if not entries:
        raise TableError(f"{path}: no case rows (IMDxxx) found under the header")
    return labels.unique_labels(entries, path=path), lines


def _txt_rows(path: Path):
    """(line, case, diagnosis) of `PH2_dataset.txt`, "||" or tab separated, any line ends."""
    with path.open(encoding="utf-8-sig", errors="replace", newline=None) as f:
        text = f.read().splitlines()
    columns = None
    for line_no, line in enumerate(text, start=1):
        sep = "||" if "||" in line else "\t"
        fields = [p.strip() for p in line.split(sep)]
        lowered = [f.lower() for f in fields]
        if columns is None:
            if "clinical diagnosis" in lowered and ("name" in lowered or "image name" in lowered):
                name_col = lowered.index("name" if "name" in lowered else "image name")
                columns = (sep, name_col, lowered.index("clinical diagnosis"))
            continue
        if sep != columns[0] or len(fields) <= max(columns[1:]):
            continue  # legend or blank line
        case, code = fields[columns[1]], fields[columns[2]]
        if not case.startswith("IMD"):
            continue
        if code not in CLINICAL_CODES:
            raise LabelError(
                f"{path}:{line_no}: clinical diagnosis {code!r} of {case} is not one of "
                f"{sorted(CLINICAL_CODES)}"
            )
        yield line_no, case, CLINICAL_CODES[code]
    if columns is None:
        raise TableError(
            f"{path}: no header line with 'Name' and 'Clinical Diagnosis' columns ('||' or tab "
            "separated)"
        )


def _xlsx_rows(path: Path):
    """(row, case, diagnosis) of `PH2_dataset.xlsx`: the sheet whose header has "Image Name"."""
    try:
        import openpyxl  # noqa: PLC0415  (only PH2 needs it)
    except ImportError:
        raise ToolMissingError(
            f"{path}: reading PH2's xlsx needs openpyxl (pip install openpyxl)"
        ) from None
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        for sheet in book.worksheets:
            rows = list(sheet.iter_rows(values_only=True))
            header = _xlsx_header(rows)
            if header is not None:
                yield from _xlsx_cases(path, sheet.title, rows, *header)
                return
    finally:
        book.close()
    raise TableError(
        f"{path}: no sheet with an 'Image Name' header and the 'Common Nevus', 'Atypical Nevus' "
        "and 'Melanoma' columns"
    )


def _cell(value) -> str:
    return "" if value is None else " ".join(str(value).split()).lower()


def _xlsx_header(rows: list) -> tuple[int, int, dict[int, str]] | None:
    """(header row index, name column, {column: diagnosis}) or None when this sheet has none."""
    for index, row in enumerate(rows):
        cells = [_cell(v) for v in row]
        if "image name" not in cells:
            continue
        diagnoses = {i: _XLSX_COLUMNS[c] for i, c in enumerate(cells) if c in _XLSX_COLUMNS}
        if len(set(diagnoses.values())) == len(_XLSX_COLUMNS):
            return index, cells.index("image name"), diagnoses
    return None


def _xlsx_cases(path: Path, sheet: str, rows: list, header: int, name_col: int, columns: dict):
    for index in range(header + 1, len(rows)):
        row = rows[index]
        case = _cell(row[name_col] if name_col < len(row) else None).upper()
        if not case.startswith("IMD"):
            continue  # blank or trailing rows
        marked = [d for col, d in columns.items() if col < len(row) and _cell(row[col])]
        if len(marked) != 1:
            raise LabelError(
                f"{path} (sheet {sheet!r}, row {index + 1}): {case} has {len(marked)} clinical "
                f"diagnoses marked ({marked or 'none'}); expected one 'X' under Common Nevus, "
                "Atypical Nevus or Melanoma"
            )
        yield index + 1, case, marked[0]
