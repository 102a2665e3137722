"""Example generation shared by the builders: label rows paired with images, Beam or plain
Python, and the bad-file policy (report every bad file of a split at once, or skip and count).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common
from tfmelanoma.errors import ImageReadError
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)


class BadFilePolicyMixin:
    """Builder kwarg `skip_bad_files`: report every bad file of a split at once (default), or
    skip and count them.

    A bad file is an unreadable image or mask, a label row whose image is missing, or an image
    without a label. By default generation goes on past a bad file and the split ends with one
    error listing all of them (`log_skipped`), so a download with several broken files is fixed
    in one round, not one file per run. Skipped files are logged and recorded in the prepared
    dataset's `info.metadata["skipped_files"]` (split -> list of "file: reason") and
    `info.metadata["num_skipped"]` (split -> count), so a prepared copy says what it lacks.
    Put it before `tfds.core.GeneratorBasedBuilder` in the bases and pass
    `metadata=tfds.core.MetadataDict()` to `dataset_info_from_configs`.
    """

    MAX_LISTED = 20

    def __init__(self, *, skip_bad_files: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.skip_bad_files = skip_bad_files
        self._original_state["skip_bad_files"] = skip_bad_files  # kept when pickled (Beam)

    @property
    def _bad_files(self) -> dict[str, list[Exception]]:
        """Bad files met so far, per split (not pickled: a Beam worker starts with none)."""
        return self.__dict__.setdefault("_bad_files_by_split", {})

    def handle_bad_file(self, split: str, error: Exception) -> None:
        """Records `error` (raised with the others at the split's end) or, when skipping, logs
        and counts it."""
        if not self.skip_bad_files:
            self._bad_files.setdefault(split, []).append(error)
            return
        logger.warning("%s/%s: skipping bad file: %s", self.name, split, error)
        metadata = self.info.metadata
        metadata.setdefault("skipped_files", {}).setdefault(split, []).append(str(error))
        counts = metadata.setdefault("num_skipped", {})
        counts[split] = counts.get(split, 0) + 1

    def raise_bad_files(self, split: str) -> None:
        """Raises one error naming every bad file recorded for `split` (of the first one's type,
        so callers catching e.g. `ImageReadError` still do)."""
        errors = self._bad_files.pop(split, [])
        if not errors:
            return
        if len(errors) == 1:
            raise errors[0]
        shown = "\n".join(f"  - {e}" for e in errors[: self.MAX_LISTED])
        more = (
            f"\n  ... and {len(errors) - self.MAX_LISTED} more"
            if len(errors) > self.MAX_LISTED
            else ""
        )
        raise type(errors[0])(
            f"{self.name}/{split}: {len(errors)} bad files:\n{shown}{more}\n"
            "Fix or remove them, or pass skip_bad_files=True to skip them."
        )

    def log_skipped(self, split: str) -> int:
        """Ends a split: raises the bad files it met (unless skipping), else logs and returns
        how many were skipped (call after the split)."""
        self.raise_bad_files(split)
        count = (self.info.metadata or {}).get("num_skipped", {}).get(split, 0)
        if count:
            logger.warning(
                "%s/%s: skipped %d bad file(s); see info.metadata", self.name, split, count
            )
        return count


def report_unlabeled(
    builder: BadFilePolicyMixin, split: str, images: Iterable[Path], label_file: Path | str
) -> None:
    """Images that `label_file` does not list: one error naming them all, or skip and count each.

    Raises:
        common.UnlabeledImageError: unless the builder skips bad files.
    """
    images = sorted(images)
    if not images:
        return
    if not builder.skip_bad_files:
        shown = "\n".join(f"  - {p}" for p in images[:20])
        more = f"\n  ... and {len(images) - 20} more" if len(images) > 20 else ""
        raise common.UnlabeledImageError(
            f"{builder.name}/{split}: {len(images)} image(s) have no label in {label_file}:\n"
            f"{shown}{more}\nPass skip_bad_files=True to skip them."
        )
    for path in images:
        builder.handle_bad_file(
            split, common.UnlabeledImageError(f"{path}: no label in {label_file}")
        )


def example_or_skip(builder: BadFilePolicyMixin, split: str, make) -> dict | None:
    """Calls `make()`; on ImageReadError returns None if the builder skips bad files, else raises."""
    try:
        return make()
    except ImageReadError as e:
        builder.handle_bad_file(split, e)
        return None


def beam_examples(rows: list, make, *, dataset: str, skip: bool):
    """An Apache Beam `PTransform` for `_generate_examples`: `make(row) -> (key, example)` per row.

    Decoding and resizing run on the Beam workers (rows must be small and picklable); a bad image
    raises there, or with `skip` is dropped and counted in the `<dataset>/skipped_bad_images`
    Beam counter (Beam workers cannot write `info.metadata`). Needs `pip install apache-beam`.
    """
    beam = tfds.core.lazy_imports.apache_beam
    counter = beam.metrics.Metrics.counter(dataset, "skipped_bad_images")

    def _one(row):
        try:
            yield make(row)
        except ImageReadError as e:
            if not skip:
                raise
            logger.warning("%s: skipping %s", dataset, e)
            counter.inc()

    return beam.Create(rows) | beam.FlatMap(_one)


def pair_rows_with_images(
    builder: BadFilePolicyMixin,
    split: str,
    rows: list,
    errors: dict[str, Exception],
    image_dir: Path,
    label_file: Path,
    *,
    drop: frozenset[str] | set[str] = frozenset(),
) -> list:
    """Label-file rows whose `<image_dir>/<image_id>.jpg` exists, with `path` filled in.

    Checks everything before any example is written: each of `errors` (rows the label file got
    wrong), images the label file does not list (`report_unlabeled`) and listed images that are
    missing all go through the builder's bad-file policy. Rows in `drop` (listed, so not
    unlabeled) are left out silently.

    Args:
        builder: the builder (bad-file policy).
        split: split name, for messages.
        rows: namedtuples with `image_id` and `path` (the expected path, for the message).
        errors: {image id: error} for rows the label file itself got wrong.
        image_dir: folder of `<image_id>.jpg` files.
        label_file: the file `rows` came from, named in messages.
        drop: image ids to leave out (e.g. ISIC 2020's published duplicates).
    """
    for error in errors.values():
        builder.handle_bad_file(split, error)
    images = {p.stem: p for p in image_dir.iterdir() if p.suffix.lower() == ".jpg"}
    listed = {r.image_id for r in rows} | errors.keys()
    report_unlabeled(builder, split, [images[i] for i in images.keys() - listed], label_file)
    present = []
    for row in rows:
        if row.image_id in drop:
            continue
        if row.image_id in images:
            present.append(row._replace(path=str(images[row.image_id])))
        else:
            builder.handle_bad_file(
                split, ImageReadError(f"{row.path}: image listed in {label_file} is missing")
            )
    return present


def row_examples(builder: BadFilePolicyMixin, split: str, rows: list, example_from_row, dataset):
    """`_generate_examples` for rows from `pair_rows_with_images`: (image id, example) pairs.

    `example_from_row(row, max_side)` reads one image (raising `ImageReadError`). With the
    builder's `use_beam` the rows are decoded on Beam workers (`beam_examples`; the function must
    be module-level so it pickles), otherwise here, through the builder's bad-file policy.
    """
    max_side = builder.builder_config.max_side
    make = functools.partial(_keyed_example, example_from_row, max_side=max_side)
    if getattr(builder, "use_beam", False):
        builder.raise_bad_files(split)  # from the pairing; Beam workers never reach log_skipped
        return beam_examples(rows, make, dataset=dataset, skip=builder.skip_bad_files)
    return _python_row_examples(builder, split, rows, make)


def _keyed_example(example_from_row, row, max_side: int | None) -> tuple[str, dict]:
    return row.image_id, example_from_row(row, max_side)


def _python_row_examples(builder: BadFilePolicyMixin, split: str, rows: list, make):
    for row in rows:
        keyed = example_or_skip(builder, split, lambda r=row: make(r))
        if keyed is not None:
            yield keyed
    builder.log_skipped(split)


def class_folder_examples(
    builder: BadFilePolicyMixin,
    *,
    dataset: str,
    split: str,
    root: Path,
    classes: Sequence[str],
    image_suffixes: Iterable[str],
    image_type: str,
    id_prefix: str = "",
):
    """Yields (key, example) for `<root>/<class>/<image>` layouts; the folder name is the diagnosis.

    Images outside the class folders have no label (`report_unlabeled`); unreadable images go
    through the builder's bad-file policy. Image ids are `<id_prefix><class>/<stem>`, since such
    sets repeat file names across folders.
    """
    suffixes = {s.lower() for s in image_suffixes}
    unlabeled = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in suffixes
        and p.relative_to(root).parts[0] not in classes
    ]
    folders = " or ".join(f"{c}/" for c in classes)
    report_unlabeled(builder, split, unlabeled, f"the {folders} folders")
    max_side = builder.builder_config.max_side
    for cls in classes:
        for path in sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in suffixes):
            image_id = f"{id_prefix}{cls}/{path.stem}"

            def make(path=path, image_id=image_id, cls=cls):
                return common.make_example(
                    dataset=dataset,
                    image=common.read_image(path, max_side=max_side),
                    image_id=image_id,
                    diagnosis=cls,
                    image_type=image_type,
                )

            example = example_or_skip(builder, split, make)
            if example is not None:
                yield image_id, example
    builder.log_skipped(split)
