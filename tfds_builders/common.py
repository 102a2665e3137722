"""Schema and helpers shared by every builder in `tfds_builders`.

Every classification example carries the same keys (see `classification_features`), so datasets can
be merged, de-duplicated and split by patient without per-dataset code. Nothing here imports
TensorFlow: builders stay loadable from projects that read through `tfds.data_source`.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from tfmelanoma import labels
from tfmelanoma.data import images, masks
from tfmelanoma.errors import ImageReadError, LabelError
from tfmelanoma.fsio import path_under
from tfmelanoma.logging_utils import get_logger

UNKNOWN_AGE = -1
IMAGE_TYPES = ("dermoscopic", "clinical")

logger = get_logger(__name__)


class MissingFilesError(FileNotFoundError):
    """One or more files of a manual download are missing; the message lists all of them."""


@dataclass(frozen=True)
class DecodedImage:
    """An image read from disk, possibly resized, with the content hashes of the original.

    Attributes:
        array: uint8 RGB array (H, W, 3), after the optional resize.
        sha256: SHA-256 of the decoded original RGB pixels (and shape): equal for byte-identical
            pixels whatever the container format.
        phash: 64-bit perceptual hash (DCT, `imagehash.phash`) of the original as 16 hex digits;
            survives resizing and re-encoding, compared by Hamming distance.
        original_size: (height, width) before the resize.
    """

    array: np.ndarray
    sha256: str
    phash: str
    original_size: tuple[int, int]


def classification_features(*, with_mask: bool = False) -> tfds.features.FeaturesDict:
    """The common example schema; segmentation configs add `segmentation_mask`."""
    features = {
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
        "image_id": tfds.features.Text(),
        "source": tfds.features.Text(),
        "label": tfds.features.ClassLabel(names=list(labels.BINARY_CLASSES)),
        "diagnosis": tfds.features.Text(),
        "harmonised_diagnosis": tfds.features.ClassLabel(names=list(labels.HARMONISED_CLASSES)),
        "patient_id": tfds.features.Text(),
        "lesion_id": tfds.features.Text(),
        "age": tfds.features.Scalar(dtype=np.int32),
        "sex": tfds.features.Text(),
        "anatomic_site": tfds.features.Text(),
        "image_type": tfds.features.Text(),
        "sha256": tfds.features.Text(),
        "phash": tfds.features.Text(),
    }
    if with_mask:
        features["segmentation_mask"] = tfds.features.Image(
            shape=(None, None, 1), encoding_format="png"
        )
    return tfds.features.FeaturesDict(features)


def lesion_info(builder, homepage: str, *, features=None) -> tfds.core.DatasetInfo:
    """The `_info` of every builder here.

    Features are `classification_features()` (with `segmentation_mask` in a segmentation config)
    unless given; the supervised keys are (image, mask) or (image, label) to match; the metadata
    dict is where the bad-file policy records what it skipped (`BadFilePolicyMixin`).
    """
    segmentation = getattr(builder.builder_config, "segmentation", False)
    return builder.dataset_info_from_configs(
        features=features or classification_features(with_mask=segmentation),
        supervised_keys=("image", "segmentation_mask" if segmentation else "label"),
        homepage=homepage,
        metadata=tfds.core.MetadataDict(),
    )


def image_hashes(rgb: Image.Image) -> tuple[str, str]:
    """Returns (sha256, phash) of a decoded RGB image."""
    array = np.asarray(rgb, dtype=np.uint8)
    digest = hashlib.sha256(f"{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest(), str(imagehash.phash(rgb))


def _resize_long_side(img: Image.Image, max_side: int) -> Image.Image:
    h, w = img.height, img.width
    if max(h, w) <= max_side:
        return img
    scale = max_side / max(h, w)
    return img.resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS
    )


def read_image(path: os.PathLike | str, *, max_side: int | None = None) -> DecodedImage:
    """Decodes an image file to RGB, hashes it, and optionally shrinks its long side.

    Grayscale, palette, CMYK and alpha images are converted to RGB; EXIF orientation is applied
    (phone photos). Hashes are always of the original size, so resized and original configs hash
    the same image identically.

    Args:
        path: image file (JPEG, PNG, BMP, ... anything Pillow decodes).
        max_side: shrink so that the long side is at most this many pixels; None keeps the size.

    Raises:
        ImageReadError: the file is missing, truncated or not an image, naming the file.
    """
    img = images.open_rgb(path)
    sha, phash = image_hashes(img)
    original_size = (img.height, img.width)
    if max_side is not None:
        img = _resize_long_side(img, max_side)
    return DecodedImage(np.asarray(img, dtype=np.uint8), sha, phash, original_size)


def read_mask(
    path: os.PathLike | str, image_path: os.PathLike | str, image: DecodedImage
) -> np.ndarray:
    """A lesion mask as uint8 (H, W, 1) 0/255, at the size `image` was resized to.

    Decoding, binarising (0/255, 0/1 and grey masks) and the size check are
    `tfmelanoma.data.masks.read_mask`'s; the mask must have the original image's size and is
    then nearest-resized along with the image.

    Args:
        path: the mask file.
        image_path: its image, named in the size-mismatch message.
        image: the decoded image (`original_size` is checked, `array`'s size is the target).

    Raises:
        ImageReadError: the mask is missing or unreadable, naming the file.
        tfmelanoma.errors.LabelError: the mask's size differs from the image's (both named).
    """
    try:
        mask = masks.read_mask(path, image_path=image_path, size=image.original_size)
    except masks.MaskReadError as e:
        raise ImageReadError(str(e)) from None
    height, width = image.array.shape[:2]
    if mask.shape != (height, width):
        mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))
    return (mask * 255).astype(np.uint8)[..., None]


def make_example(
    *,
    dataset: str,
    image: DecodedImage,
    image_id: str,
    diagnosis: str,
    patient_id: str = "",
    lesion_id: str = "",
    age: float | int | None = None,
    sex: str | None = None,
    anatomic_site: str | None = None,
    image_type: str = "dermoscopic",
    mask: np.ndarray | None = None,
) -> dict:
    """Builds one example of the common schema; labels come from the label-mapping table.

    Raises:
        tfmelanoma.labels.UnmappedDiagnosisError: `diagnosis` has no row for `dataset`.
        ValueError: `image_type` is not one of `IMAGE_TYPES`.
    """
    mapping = labels.map_diagnosis(dataset, diagnosis)
    if image_type not in IMAGE_TYPES:
        raise ValueError(f"{dataset}/{image_id}: image_type {image_type!r} not in {IMAGE_TYPES}")
    example = {
        "image": image.array,
        "image_id": image_id,
        "source": dataset,
        "label": mapping.binary,
        "diagnosis": diagnosis,
        "harmonised_diagnosis": mapping.harmonised,
        "patient_id": patient_id or "",
        "lesion_id": lesion_id or "",
        "age": parse_age(age),
        "sex": normalise_text(sex),
        "anatomic_site": normalise_text(anatomic_site),
        "image_type": image_type,
        "sha256": image.sha256,
        "phash": image.phash,
    }
    if mask is not None:
        example["segmentation_mask"] = mask
    return example


def parse_age(value: float | int | str | None) -> int:
    """Age in years as int; `UNKNOWN_AGE` (-1) for empty, NaN or unparsable values."""
    if value is None:
        return UNKNOWN_AGE
    try:
        age = float(value)
    except (TypeError, ValueError):
        return UNKNOWN_AGE
    return UNKNOWN_AGE if np.isnan(age) or age < 0 else int(round(age))


def normalise_text(value: object) -> str:
    """Lower-cased, stripped text; "" for None/NaN/"unknown"."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip().lower()
    return "" if text in {"nan", "unknown", "none", "null"} else text


class MissingColumnError(ValueError):
    """A CSV lacks a column the builder needs; the message names the file and the columns."""


def read_csv(
    path: os.PathLike | str,
    required: Sequence[str] = (),
    *,
    fieldnames: Sequence[str] | None = None,
    error: type[Exception] = MissingColumnError,
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
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        listing = "\n".join(f"  - {root / n}" for n in missing)
        raise MissingFilesError(
            f"{dataset}: {len(missing)} expected file(s) missing from the manual download "
            f"directory {root}:\n{listing}\n{instructions.strip()}"
        )
    return root


# --- Shared by the builders: configs, manual files given as folders or zips, bad-file policy ---


@dataclasses.dataclass(eq=False)
class LesionConfig(tfds.core.BuilderConfig):
    """A builder variant: image size at preparation and whether masks are included.

    Attributes:
        max_side: shrink every image so its long side is at most this many pixels (masks follow
            with nearest-neighbour resizing); None keeps the original size.
        segmentation: add `segmentation_mask` (only for datasets that have lesion masks).
        image_type: `dermoscopic` or `clinical`, for datasets that ship both (e.g. derm7pt).
    """

    max_side: int | None = None
    segmentation: bool = False
    image_type: str = "dermoscopic"


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
        MissingFilesError: listing every missing name and where it was looked for.
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
        listing = "\n".join(f"  - {m}" for m in missing)
        raise MissingFilesError(
            f"{dataset}: {len(missing)} expected file(s) missing from the manual download "
            f"directory {root}:\n{listing}\n{instructions.strip()}"
        )
    return found


class UnlabeledImageError(ValueError):
    """Image files that the label file does not mention; the message names them."""


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
        UnlabeledImageError: unless the builder skips bad files.
    """
    images = sorted(images)
    if not images:
        return
    if not builder.skip_bad_files:
        shown = "\n".join(f"  - {p}" for p in images[:20])
        more = f"\n  ... and {len(images) - 20} more" if len(images) > 20 else ""
        raise UnlabeledImageError(
            f"{builder.name}/{split}: {len(images)} image(s) have no label in {label_file}:\n"
            f"{shown}{more}\nPass skip_bad_files=True to skip them."
        )
    for path in images:
        builder.handle_bad_file(split, UnlabeledImageError(f"{path}: no label in {label_file}"))


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
                return make_example(
                    dataset=dataset,
                    image=read_image(path, max_side=max_side),
                    image_id=image_id,
                    diagnosis=cls,
                    image_type=image_type,
                )

            example = example_or_skip(builder, split, make)
            if example is not None:
                yield image_id, example
    builder.log_skipped(split)
