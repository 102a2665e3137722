"""Reading a manual download: its files given as folders or zips, its CSVs, id -> path maps.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common
from tfmelanoma import labels
from tfmelanoma.errors import LabelError
from tfmelanoma.fsio import path_under
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)


def read_csv(
    path: os.PathLike | str,
    required: Sequence[str] = (),
    *,
    fieldnames: Sequence[str] | None = None,
    error: type[Exception] = common.MissingColumnError,
    hint: str = "",
) -> list[tuple[int, dict[str, str]]]:
    """Every builder's CSV reader: rows with their line numbers, a byte-order mark tolerated.

    Spreadsheet programs save CSVs with a UTF-8 BOM, which plain `utf-8` keeps in the first
    column's name (`\ufeffimage_id`); `utf-8-sig` drops it.

    Args:
        path: the CSV file.
        required: columns that must be in the header.
        fieldnames: column names of a file without a header line (its first line is a row).
        error: the exception type for a missing column (a builder's own, e.g. GroundTruthError).
        hint: appended to the missing-column message (e.g. which version of the file has it).

    Returns:
        (line number, row) pairs in file order; a row maps column -> cell (None when short).

    Raises:
        `error`: a required column is missing, naming the file, the missing and the found columns.
    """
    with Path(path).open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, fieldnames=fieldnames)
        found = list(reader.fieldnames or [])
        missing = [c for c in required if c not in found]
        if missing:
            raise error(
                f"{path}: missing column(s) {missing}; expected {list(required)}, found columns "
                f"{found}{f' ({hint})' if hint else ''}"
            )
        rows = []
        for row in reader:
            rows.append((reader.line_num, row))
        return rows


def one_hot_ground_truth(
    path: Path, id_column: str, classes: Sequence[str], *, error: type[Exception]
) -> tuple[list[tuple[int, dict[str, str], str]], dict[str, Exception]]:
    """Reads a one-hot ground-truth CSV (ISIC 2018 Task 3, ISIC 2019) through one validation.

    Args:
        path: the CSV, with `id_column` and one 0/1 column per class.
        id_column: the image id column.
        classes: the class columns; exactly one must be 1 in each row.
        error: the builder's error type (raised, and used for the bad rows).

    Returns:
        (line, row, class) for every good row, first occurrence of each id only, and
        {image id: error} for rows that are not one-hot (the bad-file policy decides).

    Raises:
        `error`: a column is missing, or an id is listed twice with different classes.
    """
    good, errors, entries = [], {}, []
    for line, row in read_csv(path, [id_column, *classes], error=error):
        image_id = row[id_column]
        try:
            hot = labels.one_hot_label(row, classes, where=f"{path}:{line}", image_id=image_id)
        except LabelError as e:
            errors[image_id] = error(str(e))
            continue
        entries.append((image_id, hot, f"line {line}"))
        good.append((line, row, hot))
    try:
        labels.unique_labels(entries, path=path)  # an id twice: the same class, or an error
    except LabelError as e:
        raise error(str(e)) from None
    first = {}
    for line, row, hot in good:
        first.setdefault(row[id_column], (line, row, hot))
    return list(first.values()), errors


def id_paths(
    label_file: Path,
    lines: dict[str, int],
    image: tuple[Path, str],
    mask: tuple[Path, str] | None = None,
) -> dict[str, tuple[Path, Path | None]]:
    """The image (and mask) file of every id of a label file, each checked to stay in its folder.

    Ids become file names; one such as `../../other_split/ISIC_x` or an absolute path would
    pull a file from elsewhere, so `tfmelanoma.fsio.path_under` refuses it, before any image
    is read.

    Args:
        label_file: where the ids come from, for the message.
        lines: id -> its line in `label_file`.
        image: (folder, file name pattern with `{id}`), e.g. (data_dir, "{id}.jpg").
        mask: the same for masks, or None.

    Raises:
        tfmelanoma.errors.UnsafePathError: naming the label file, line and value.
    """
    paths = {}
    for image_id, line in lines.items():
        where = f"{label_file}:{line}"
        image_path = path_under(image[0], image[1].format(id=image_id), source=where)
        mask_path = None
        if mask is not None:
            mask_path = path_under(mask[0], mask[1].format(id=image_id), source=where)
        paths[image_id] = (image_path, mask_path)
    return paths


def check_manual_files(
    manual_dir: os.PathLike | str, names: Iterable[str], *, dataset: str, instructions: str = ""
) -> Path:
    """Raises one error listing every missing file of a manual download.

    Args:
        manual_dir: where TFDS looked (`dl_manager.manual_dir`).
        names: expected file or folder names, relative to `manual_dir`.
        dataset: builder name, for the message.
        instructions: the builder's `MANUAL_DOWNLOAD_INSTRUCTIONS`, appended to the message.

    Returns:
        `manual_dir` as a Path.
    """
    root = Path(manual_dir)
    missing = [str(root / n) for n in names if not (root / n).exists()]
    if missing:
        raise _missing_files(dataset, root, missing, instructions)
    return root


def _missing_files(
    dataset: str, root: Path, missing: list[str], instructions: str
) -> common.MissingFilesError:
    """One error listing every missing file of a manual download, with the instructions."""
    listing = "\n".join(f"  - {m}" for m in missing)
    return common.MissingFilesError(
        f"{dataset}: {len(missing)} expected file(s) missing from the manual download "
        f"directory {root}:\n{listing}\n{instructions.strip()}"
    )


def locate_manual_files(
    dl_manager: tfds.download.DownloadManager,
    names: Iterable[str],
    *,
    dataset: str,
    instructions: str = "",
) -> dict[str, Path]:
    """Finds every file of a manual download, as extracted folders or as the downloaded zips.

    A name ending in "/" is a folder of the official archive; it is accepted extracted
    (`manual_dir/<name>/`) or as the zip the user downloaded (`manual_dir/<name>.zip`, extracted
    by `dl_manager.extract`, whose result is cached in the download dir). Other names are files.

    Args:
        dl_manager: the builder's download manager (`manual_dir`, `extract`).
        names: expected names, relative to `manual_dir`.
        dataset: builder name, for the message.
        instructions: `MANUAL_DOWNLOAD_INSTRUCTIONS`, appended to the message.

    Returns:
        name (without the trailing "/") -> local path of the file or extracted folder.

    Raises:
        common.MissingFilesError: listing every missing name and where it was looked for.
    """
    root = Path(dl_manager.manual_dir)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in names:
        key = name.rstrip("/")
        if (root / key).exists():
            found[key] = root / key
        elif name.endswith("/") and (root / f"{key}.zip").is_file():
            extracted = Path(dl_manager.extract(root / f"{key}.zip"))
            # Official zips hold one top folder named like the zip; some re-packs do not.
            found[key] = extracted / key if (extracted / key).is_dir() else extracted
        else:
            missing.append(
                f"{root / key}" + (f"/ (or {root / key}.zip)" if name.endswith("/") else "")
            )
    if missing:
        raise _missing_files(dataset, root, missing, instructions)
    return found
