"""Dataset names -> prepared TFDS builders, preparing on first use where that is possible.

`sample` is the embedded CC0 set (`isic_archive/sample`); it prepares itself. Any other dataset
is prepared from its manual download when a manual directory is given, else it must already be
prepared in the data dir (the error says how).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import tensorflow_datasets as tfds

from tfmelanoma import fsio
from tfmelanoma.data.sample import BUILDER_NAME, SAMPLE_NAME
from tfmelanoma.datasets.index import DatasetNotPreparedError, is_array_record
from tfmelanoma.logging_utils import get_logger, import_tensorflow_quietly

logger = get_logger(__name__)

FILE_FORMATS = ("tfrecord", "array_record")


def builder_name(name: str) -> str:
    """The TFDS builder name of a dataset name (`sample` -> `isic_archive/sample`)."""
    return BUILDER_NAME if name == SAMPLE_NAME else name


def ensure_prepared(
    name: str,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    *,
    file_format: str = "tfrecord",
) -> tfds.core.DatasetBuilder:
    """Returns the prepared builder of `name`, preparing it if it can.

    Preparation holds `folder_lock(<data_dir>/<dataset>)`: a second process preparing the same
    dataset waits and then uses the first one's result; leftovers of a killed preparation
    (TFDS's `incomplete.*` folders) are removed once the lock is held.

    Args:
        name: dataset name (`sample` or a builder name such as `isic2017/classification_512`).
        data_dir: TFDS data dir (None: the TFDS default).
        manual_dir: folder holding the dataset's manual download; `<manual_dir>/<name>` is used
            when it exists (one folder per dataset), else `manual_dir` itself.
        file_format: for preparing: "tfrecord" for tf.data, "array_record" for
            `tfds.data_source` (which needs it; tf.data reads either).

    Raises:
        ValueError: unknown dataset name, listing the registered builders; or a dataset already
            prepared in another file format than `file_format`.
        DatasetNotPreparedError: the dataset needs preparing but TensorFlow (which TFDS prepares
            with) is not installed.
    """
    import tfds_builders

    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format {file_format!r} not in {FILE_FORMATS}")
    full = builder_name(name)
    try:
        # Without a file format: a prepared dataset's own (TFDS refuses a different one).
        builder = tfds.builder(full, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(
            f"unknown dataset {name!r}; datasets: {', '.join([SAMPLE_NAME, *tfds_builders.BUILDERS])}"
        ) from None
    if builder.is_prepared():
        return _check_format(builder, name, file_format)
    if importlib.util.find_spec("tensorflow") is None:
        raise DatasetNotPreparedError(
            f"dataset {name!r} is not prepared in {builder.data_dir}, and preparing it needs "
            f"TensorFlow, which is not installed here; prepare it on a machine with TensorFlow "
            f"(`tfds build ... --file_format {file_format}`) and copy the data_dir"
        )
    if full != BUILDER_NAME and not manual_dir:
        return builder  # not preparable here; the reader says how to prepare it
    if full == BUILDER_NAME:
        # The embedded sample is prepared as ArrayRecord, which both pipelines read, so the
        # default run and a `KERAS_BACKEND=jax` run share one prepared copy.
        file_format = "array_record"
    # One preparation per dataset at a time: a second process waits, then finds it prepared
    # (instead of doing all the work again and failing on TFDS's final rename).
    dataset_root = Path(str(builder.data_dir_root)) / full.split("/")[0]
    with fsio.folder_lock(dataset_root, "data dir", wait=True, on_wait=logger.info):
        builder = tfds.builder(full, data_dir=data_dir)
        if builder.is_prepared():  # another process prepared it while this one waited
            return _check_format(builder, name, file_format)
        remove_incomplete(dataset_root)
        builder = tfds.builder(full, data_dir=data_dir, file_format=file_format)
        download_config = None
        if manual_dir:
            root = fsio.expand(manual_dir)
            sub = root / full.split("/")[0]
            folder = sub if sub.is_dir() else root
            _check_manual_dir(folder, builder)
            download_config = tfds.download.DownloadConfig(manual_dir=str(folder))
        logger.info("preparing %s in %s (%s)", full, builder.data_dir, file_format)
        quiet_progress_bars()
        import_tensorflow_quietly()  # TFDS prepares with TensorFlow, also under JAX or torch
        builder.download_and_prepare(download_config=download_config, file_format=file_format)
    return builder


def _check_manual_dir(folder: Path, builder) -> None:
    """MissingFilesError with the download instructions when `folder` is missing or empty
    (TFDS would end in a bare AssertionError)."""
    from tfds_builders.common import MissingFilesError

    problem = "does not exist" if not folder.is_dir() else None
    if problem is None and not any(folder.iterdir()):
        problem = "is empty"
    if problem is None:
        return
    how = (getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", "") or "").strip()
    raise MissingFilesError(
        f"{builder.name}: the manual download folder {folder} {problem}; put the dataset's "
        "download there (data.manual_dir, or a sub-folder named after the dataset):\n" + how
    )


def quiet_progress_bars() -> None:
    """No TFDS progress bars outside a terminal: TFDS draws tqdm bars whether or not one is
    there, and in a log file they are lines of escape codes (`[A`)."""
    if not sys.stderr.isatty():
        tfds.disable_progress_bar()


def _check_format(builder, name: str, file_format: str):
    """The prepared `builder`, or ValueError when random access needs a format it lacks."""
    # tf.data reads both formats; random access (`tfds.data_source`) needs ArrayRecord.
    if file_format == "array_record" and not is_array_record(builder):
        if builder_name(name) == BUILDER_NAME:  # an older tfmelanoma prepared it as TFRecord
            raise ValueError(
                f"the embedded sample in {builder.data_dir} was prepared as tfrecord by an "
                "older tfmelanoma, but the NumPy pipeline reads array_record; delete that "
                "folder (it is re-prepared from the package in seconds, as array_record, "
                "which tf.data reads too) or use data.pipeline=tf"
            )
        raise ValueError(
            f"dataset {name!r} in {builder.data_dir} is prepared as "
            f"{getattr(builder.info.file_format, 'value', builder.info.file_format)}, "
            "but the NumPy pipeline reads array_record; prepare it as array_record in another "
            "data_dir (`tfds build ... --file_format array_record`) or use data.pipeline=tf"
        )
    return builder


# What TFDS 4.9 leaves behind when a preparation is killed: the data folder it writes into,
# `<name>/<config>/incomplete.<6 chars>_<version>/` (`file_utils.incomplete_dir`), and files
# `incomplete.<32 hex>.<file name>` (`py_utils.incomplete_file`, e.g. in `<name>/.config/`).
_INCOMPLETE_DIR = re.compile(r"^incomplete\.[A-Z0-9]{6}_.+$")
_INCOMPLETE_FILE = re.compile(r"^incomplete\.[0-9a-fA-F]{32}\..+$")


def remove_incomplete(dataset_root: Path) -> list[Path]:
    """Removes what killed preparations left under `<data_dir>/<dataset name>`.

    Call it only while holding the dataset's `folder_lock`: then no live writer owns them.

    Returns:
        The removed paths.
    """
    removed = []
    for folder, dirs, files in os.walk(dataset_root):
        for d in [d for d in dirs if _INCOMPLETE_DIR.match(d)]:
            shutil.rmtree(Path(folder) / d, ignore_errors=True)
            removed.append(Path(folder) / d)
            dirs.remove(d)
        for f in files:
            if _INCOMPLETE_FILE.match(f):
                (Path(folder) / f).unlink(missing_ok=True)
                removed.append(Path(folder) / f)
    if removed:
        logger.info(
            "removed %d leftovers of an interrupted preparation: %s",
            len(removed),
            ", ".join(map(str, removed[:3])),
        )
    return removed
