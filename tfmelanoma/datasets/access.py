"""Dataset names -> prepared TFDS builders: `get_builder`, the one way in to a dataset.

`sample` is the embedded CC0 set (`isic_archive/sample`); it prepares itself. Any other dataset
is prepared from its manual download when a manual directory is given, else it must already be
prepared in the data dir. Every refusal is a `tfmelanoma.errors.DatasetError` whose message
names the dataset, the data dir and what to do; `DatasetNotPreparedError` is its kind for "not
prepared, and not preparable here".
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import threading
from pathlib import Path

from tfmelanoma import fsio
from tfmelanoma.data.sample import BUILDER_NAME, SAMPLE_NAME
from tfmelanoma.errors import DatasetError, DatasetNotPreparedError
from tfmelanoma.logging_utils import get_logger, import_tensorflow_quietly

logger = get_logger(__name__)

FILE_FORMATS = ("tfrecord", "array_record")


def builder_name(name: str) -> str:
    """The TFDS builder name of a dataset name (`sample` -> `isic_archive/sample`)."""
    return BUILDER_NAME if name == SAMPLE_NAME else name


_BUILDERS_LOCK = threading.Lock()
_builders: list[list[str] | None] = []
"""`registered_builders`'s one answer per process, once it has been tried."""


def registered_builders() -> list[str] | None:
    """The project's builder names, registered with TFDS by importing `tfds_builders`.

    None where they cannot be imported (a bare host without `imagehash`): datasets prepared
    elsewhere are still read, from the metadata in their folders, but nothing is prepared.

    The import is tried once per process, under a lock: a failed import is not cached by Python,
    so loader threads that each opened a source used to import `tfds_builders` again at the same
    time, and one could see another's half-run module (`no attribute 'BUILDERS'`; measured on the
    GPU host, which lacks `imagehash`).
    """
    with _BUILDERS_LOCK:
        if not _builders:
            try:
                import tfds_builders

                _builders.append(tfds_builders.BUILDERS)
            except ImportError as e:
                logger.info("the project's dataset builders cannot be imported (%s)", e)
                _builders.append(None)
        return _builders[0]


def get_builder(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    manual_dir: str | os.PathLike | None = None,
    file_format: str | None = None,
    prepare: bool = True,
):
    """The prepared TFDS builder of a dataset, preparing it first where it can.

    Preparation holds `folder_lock(<data_dir>/<dataset>)`: a second process preparing the same
    dataset waits and then uses the first one's result; leftovers of a killed preparation
    (TFDS's `incomplete.*` folders) are removed once the lock is held.

    Args:
        name: `sample` (the embedded set) or a builder name, optionally with config and version
            (`isic2017`, `isic_archive/resized_512`).
        data_dir: TFDS data dir (None: the TFDS default).
        manual_dir: folder holding the dataset's manual download; `<manual_dir>/<name>` is used
            when it exists (one folder per dataset), else `manual_dir` itself.
        file_format: what the caller reads. "array_record": random access (`tfds.data_source`,
            the NumPy pipeline), so a dataset prepared as TFRecord is refused and preparing
            writes ArrayRecord. "tfrecord" or None: tf.data, which reads either format;
            preparing writes TFRecord. The embedded sample is always prepared as ArrayRecord.
        prepare: False only reads: a dataset that is not prepared is an error.

    Returns:
        A prepared `tfds.core.DatasetBuilder`.

    Raises:
        DatasetError: unknown dataset (the valid names listed), prepared in a format the reader
            cannot use, or a missing or empty manual download folder.
        DatasetNotPreparedError: not prepared, and not preparable here (no `manual_dir`,
            `prepare=False`, or no TensorFlow to prepare with); the message says how.
    """
    import tensorflow_datasets as tfds

    if file_format not in (None, *FILE_FORMATS):
        raise DatasetError(f"{name}: file_format {file_format!r} not in {FILE_FORMATS}")
    data_dir = str(fsio.expand(data_dir)) if data_dir else None
    full = builder_name(name)
    ours = registered_builders()
    builder = _builder(name, data_dir, ours)
    if builder.is_prepared():
        return _check_format(builder, name, file_format)
    if not prepare or (full != BUILDER_NAME and not manual_dir):
        if ours is not None and full.split("/")[0] not in ours:  # e.g. TFDS's own `simpte`
            raise DatasetError(_unknown(name, ours))
        raise DatasetNotPreparedError(_how_to_prepare(name, builder, data_dir))
    if importlib.util.find_spec("tensorflow") is None or ours is None:
        raise DatasetNotPreparedError(
            f"dataset {name!r} is not prepared in {builder.data_dir}, and preparing it needs "
            "TensorFlow and the project's builders, which cannot be imported here; prepare it on "
            f"a machine with TensorFlow (`tfds build ... --file_format {file_format or 'tfrecord'}`"
            ") and copy the data_dir"
        )
    # The embedded sample is prepared as ArrayRecord, which both pipelines read, so the default
    # run and a `KERAS_BACKEND=jax` run share one prepared copy.
    writes = "array_record" if full == BUILDER_NAME else file_format or "tfrecord"
    # One preparation per dataset at a time: a second process waits, then finds it prepared
    # (instead of doing all the work again and failing on TFDS's final rename).
    dataset_root = Path(data_dir_root(builder)) / full.split("/")[0]
    with fsio.folder_lock(dataset_root, "data dir", wait=True, on_wait=logger.info):
        builder = tfds.builder(full, data_dir=data_dir)
        if builder.is_prepared():  # another process prepared it while this one waited
            return _check_format(builder, name, file_format)
        remove_incomplete(dataset_root)
        builder = tfds.builder(full, data_dir=data_dir, file_format=writes)
        download_config = None
        if manual_dir:
            root = fsio.expand(manual_dir)
            sub = root / full.split("/")[0]
            folder = sub if sub.is_dir() else root
            _check_manual_dir(folder, builder)
            download_config = tfds.download.DownloadConfig(manual_dir=str(folder))
        logger.info("preparing %s in %s (%s)", full, builder.data_dir, writes)
        quiet_progress_bars()
        import_tensorflow_quietly()  # TFDS prepares with TensorFlow, also under JAX or torch
        builder.download_and_prepare(download_config=download_config, file_format=writes)
    return builder


def _unknown(name: str, ours: list[str]) -> str:
    return f"unknown dataset {name!r}; datasets: {', '.join([SAMPLE_NAME, *ours])}"


def data_dir_root(builder) -> str:
    """The TFDS data dir that a prepared `builder` lives in: `<root>` of
    `<root>/<name>[/<config>]/<version>`.

    TFDS's own `builder.data_dir_root` is that only for a registered builder class; for one read
    from its files (`ReadOnlyBuilder`: a host without the project's builders, such as the GPU
    host without `imagehash`) it is the version folder itself, which no later
    `tfds.data_source(name, data_dir=...)` can find the dataset under.
    """
    depth = 2 if builder.builder_config else 1
    return str(Path(str(builder.data_dir)).parents[depth])


def _builder(name: str, data_dir, ours: list[str] | None):
    """`tfds.builder` without a file format (a prepared dataset's own; TFDS refuses another)."""
    import tensorflow_datasets as tfds

    where = data_dir or "the default TFDS data dir"
    try:
        return tfds.builder(builder_name(name), data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        if ours is None:
            raise DatasetNotPreparedError(
                f"dataset {name!r} is not prepared in {where}, and the project's builders "
                "cannot be imported here to prepare it (is `imagehash` installed?)"
            ) from None
        raise DatasetError(_unknown(name, ours)) from None
    except (ValueError, AssertionError) as e:  # an unknown config or version of a known name
        first = str(e).splitlines()[0]
        raise DatasetError(f"dataset {name!r} in {where}: {first}") from None


def _how_to_prepare(name: str, builder, data_dir) -> str:
    folder = builder_name(name).split("/")[0]
    d = f" --data-dir {data_dir}" if data_dir else ""
    set_d = f" --set data.data_dir={data_dir}" if data_dir else ""
    return (
        f"dataset {name!r} is not prepared in {builder.data_dir}\n"
        f"prepare it from its manual download (tfds_builders/{folder}/README.md names the "
        "files), with this command or by training on it:\n"
        f"  python -m tfmelanoma.datasets report --train {name} --test {name}{d} "
        "--manual-dir <download folder> --out <report folder>\n"
        f"  python -m tfmelanoma.train --set data.train={name} --set data.test={name} "
        f"--set data.manual_dir=<download folder>{set_d}\n"
        f"or in Python: tfmelanoma.datasets.get_builder({name!r}, "
        f"{str(data_dir) if data_dir else None!r}, manual_dir=<download folder>)"
    )


def is_array_record(builder) -> bool:
    """Whether a prepared builder's files are ArrayRecord (random access) rather than TFRecord."""
    return "array_record" in str(builder.info.file_format).lower()


def file_format_of(builder) -> str:
    """ "array_record" or "tfrecord": the format a prepared builder's files are in."""
    return str(getattr(builder.info.file_format, "value", builder.info.file_format))


def _check_manual_dir(folder: Path, builder) -> None:
    """DatasetError with the download instructions when `folder` is missing or empty (TFDS
    would end in a bare AssertionError)."""
    problem = "does not exist" if not folder.is_dir() else None
    if problem is None and not any(folder.iterdir()):
        problem = "is empty"
    if problem is None:
        return
    how = (getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", "") or "").strip()
    raise DatasetError(
        f"{builder.name}: the manual download folder {folder} {problem}; put the dataset's "
        "download there (data.manual_dir, or a sub-folder named after the dataset):\n" + how
    )


def quiet_progress_bars() -> None:
    """No TFDS progress bars outside a terminal: TFDS draws tqdm bars whether or not one is
    there, and in a log file they are lines of escape codes (`[A`)."""
    import tensorflow_datasets as tfds

    if not sys.stderr.isatty():
        tfds.disable_progress_bar()


def _check_format(builder, name: str, file_format: str | None):
    """The prepared `builder`, or DatasetError when random access needs a format it lacks."""
    # tf.data reads both formats; random access (`tfds.data_source`) needs ArrayRecord.
    if file_format == "array_record" and not is_array_record(builder):
        if builder_name(name) == BUILDER_NAME:  # an older tfmelanoma prepared it as TFRecord
            raise DatasetError(
                f"the embedded sample in {builder.data_dir} was prepared as tfrecord by an "
                "older tfmelanoma, but the NumPy pipeline reads array_record; delete that "
                "folder (it is re-prepared from the package in seconds, as array_record, "
                "which tf.data reads too) or use data.pipeline=tf"
            )
        raise DatasetError(
            f"dataset {name!r} in {builder.data_dir} is prepared as {file_format_of(builder)}, "
            "but random access (the NumPy pipeline, `tfds.data_source`) needs ArrayRecord; "
            "prepare it as array_record in another data_dir (`tfds build ... --file_format "
            "array_record`), or read it with tf.data (data.pipeline=tf, `as_tf_dataset`)"
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
