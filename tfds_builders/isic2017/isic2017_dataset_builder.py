"""ISIC 2017 challenge: Part 1 lesion masks, Part 3 melanoma / seborrheic keratosis labels."""

from __future__ import annotations

import re
from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files
from tfmelanoma import labels
from tfmelanoma.logging_utils import get_logger

_NAME = "isic2017"
# Split -> the official file-name stem of its archives.
_SPLIT_STEMS = {
    "train": "ISIC-2017_Training",
    "validation": "ISIC-2017_Validation",
    "test": "ISIC-2017_Test_v2",
}
_OPTIONAL_SPLITS = ("test",)
logger = get_logger(__name__)
# The Data zips also hold `ISIC_xxxxxxx_superpixels.png` files, which are not lesion images.
_IMAGE_RE = re.compile(r"^ISIC_\d+\.jpg$")


def _expected_files(stem: str, *, segmentation: bool) -> list[str]:
    names = [f"{stem}_Data/", f"{stem}_Part3_GroundTruth.csv"]
    if segmentation:
        names.append(f"{stem}_Part1_GroundTruth/")
    return names


def _read_labels(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Part 3 ground truth: image_id -> melanoma / seborrheic_keratosis / nevus (neither).

    Returns:
        The labels and the line of each id (for messages).

    Raises:
        tfmelanoma.errors.LabelError: a flag that is not 0/1, a row marked as both classes, or an
            image listed twice with different labels (naming file, line, id and value).
    """
    columns = ("melanoma", "seborrheic_keratosis")
    rows = manual_files.read_csv(path, ("image_id", *columns))
    diagnoses = labels.unique_labels(
        (
            (
                row["image_id"],
                labels.one_hot_label(
                    row, columns, where=f"{path}:{line}", image_id=row["image_id"], none="nevus"
                ),
                f"line {line}",
            )
            for line, row in rows
        ),
        path=path,
    )
    lines = {}
    for line, row in rows:
        lines.setdefault(row["image_id"], line)
    return diagnoses, lines


def _read_metadata(path: Path | None) -> dict[str, dict[str, str]]:
    """`*_Data_metadata.csv`: image_id -> {age_approximate, sex} ("unknown" where absent)."""
    if path is None:
        return {}
    return {row["image_id"]: row for _, row in manual_files.read_csv(path, ("image_id",))}


def _present(manual: Path, name: str) -> bool:
    return (manual / name.rstrip("/")).exists() or (manual / f"{name.rstrip('/')}.zip").exists()


def _optional_split_files(manual: Path, split: str, expected: list[str]) -> list[str]:
    """The files to ask for of an optional split: none when its download is absent.

    The classification files (Data + Part 3 labels) decide whether the split is there; a
    segmentation config skips it, with a warning, when only its Part 1 masks are missing (the
    user has the classification download), so train and validation still build. A split with
    some but not all classification files is asked for whole, so the error names what is missing.
    """
    core = [n for n in expected if "Part1" not in n]
    if not any(_present(manual, n) for n in expected):
        return []
    masks = [n for n in expected if "Part1" in n]
    if masks and all(_present(manual, n) for n in core) and not _present(manual, masks[0]):
        logger.warning(
            "%s: no %s split in this config: %s(.zip) is missing (only the classification "
            "files are there)",
            _NAME,
            split,
            manual / masks[0].rstrip("/"),
        )
        return []
    return expected


def _metadata_csv(data_dir: Path, stem: str) -> Path | None:
    """`<stem>_Data_metadata.csv` inside the Data folder; None (age and sex unknown) if absent."""
    path = data_dir / f"{stem}_Data_metadata.csv"
    if path.is_file():
        return path
    logger.warning("%s: %s is missing; age and sex are left unknown", _NAME, path)
    return None


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for ISIC 2017 (classification and segmentation configs)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download the ISIC 2017 challenge files from https://challenge.isic-archive.com/data/#2017
    and put them, as downloaded (zips) or extracted (folders), in `manual_dir`:
      ISIC-2017_Training_Data.zip            (or the folder ISIC-2017_Training_Data/)
      ISIC-2017_Training_Part1_GroundTruth.zip   (segmentation configs only)
      ISIC-2017_Training_Part3_GroundTruth.csv
      ISIC-2017_Validation_Data.zip
      ISIC-2017_Validation_Part1_GroundTruth.zip (segmentation configs only)
      ISIC-2017_Validation_Part3_GroundTruth.csv
    Optional test split (prepared when its files are present):
      ISIC-2017_Test_v2_Data.zip, ISIC-2017_Test_v2_Part1_GroundTruth.zip,
      ISIC-2017_Test_v2_Part3_GroundTruth.csv
    Age and sex come from the `*_Data_metadata.csv` inside each Data zip (optional: without it
    they are unknown). A segmentation config leaves out the test split when only its Part 1
    masks are missing.
    """
    BUILDER_CONFIGS = common.lesion_configs("Images, no masks", "Images with Part 1 lesion masks")
    DEFAULT_BUILDER_CONFIG_NAME = "classification_512"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://challenge.isic-archive.com/data/#2017")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        segmentation = self.builder_config.segmentation
        manual = Path(dl_manager.manual_dir)
        names = []
        splits = []
        for split, stem in _SPLIT_STEMS.items():
            expected = _expected_files(stem, segmentation=segmentation)
            if split in _OPTIONAL_SPLITS:
                expected = _optional_split_files(manual, split, expected)
                if not expected:
                    continue
            names += expected
            splits.append(split)
        found = manual_files.locate_manual_files(
            dl_manager, names, dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )
        generators = {}
        for split in splits:
            stem = _SPLIT_STEMS[split]
            generators[split] = self._generate_examples(
                split=split,
                data_dir=found[f"{stem}_Data"],
                labels_csv=found[f"{stem}_Part3_GroundTruth.csv"],
                metadata_csv=_metadata_csv(found[f"{stem}_Data"], stem),
                masks_dir=found.get(f"{stem}_Part1_GroundTruth"),
            )
        return generators

    def _generate_examples(self, split, data_dir, labels_csv, metadata_csv, masks_dir):
        diagnoses, lines = _read_labels(labels_csv)
        metadata = _read_metadata(metadata_csv)
        paths = manual_files.id_paths(
            labels_csv,
            lines,
            (data_dir, "{id}.jpg"),
            masks_dir and (masks_dir, "{id}_segmentation.png"),
        )
        images = {p.stem: p for p in data_dir.iterdir() if _IMAGE_RE.match(p.name)}
        generation.report_unlabeled(
            self, split, (p for i, p in images.items() if i not in diagnoses), labels_csv
        )
        max_side = self.builder_config.max_side
        for image_id, diagnosis in diagnoses.items():

            def make(image_id=image_id, diagnosis=diagnosis):
                image_path, mask_path = paths[image_id]
                meta = metadata.get(image_id, {})
                return common.example_from_files(
                    image_path,
                    mask_path,
                    max_side=max_side,
                    dataset=_NAME,
                    image_id=image_id,
                    diagnosis=diagnosis,
                    age=meta.get("age_approximate"),
                    sex=meta.get("sex"),
                    image_type="dermoscopic",
                )

            example = generation.example_or_skip(self, split, make)
            if example is not None:
                yield image_id, example
        self.log_skipped(split)
