"""ISIC 2016 (ISBI 2016) challenge: Part 1 lesion masks and Part 3 benign / malignant labels."""

from __future__ import annotations

import re
from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files
from tfmelanoma import labels as label_values

_NAME = "isic2016"
_SPLITS = {"train": "Training", "test": "Test"}
_IMAGE_RE = re.compile(r"^ISIC_\d+\.jpg$")
# Training ground truth says benign/malignant, the test ground truth 0.0/1.0.
_CLASSES = ("benign", "malignant")


def _expected_files(part: str, *, segmentation: bool) -> dict[str, str]:
    files = {"labels": f"ISBI2016_ISIC_Part3_{part}_GroundTruth.csv"}
    if segmentation:
        files["images"] = f"ISBI2016_ISIC_Part1_{part}_Data/"
        files["masks"] = f"ISBI2016_ISIC_Part1_{part}_GroundTruth/"
    else:
        files["images"] = f"ISBI2016_ISIC_Part3_{part}_Data/"
    return files


def _read_labels(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Part 3 ground truth (no header): image_id -> benign / malignant, and each id's line.

    Raises:
        tfmelanoma.errors.LabelError: a label that is not benign/malignant/0/1, or an image
            listed twice with different labels (naming file, line, id and value).
    """
    entries, lines = [], {}
    for line, row in manual_files.read_csv(path, fieldnames=("image_id", "label")):
        image_id = (row["image_id"] or "").strip()
        if not image_id.startswith("ISIC_"):
            continue  # blank line or a header added by a re-pack
        where = f"{path}:{line}"
        flag = label_values.binary_value(
            row["label"], where=where, what="label", image_id=image_id, names=_CLASSES
        )
        entries.append((image_id, _CLASSES[flag], f"line {line}"))
        lines.setdefault(image_id, line)
    return label_values.unique_labels(entries, path=path), lines


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for ISIC 2016 (classification and segmentation configs)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download the ISBI 2016 challenge files from https://challenge.isic-archive.com/data/#2016
    and put them, as downloaded (zips) or extracted (folders), in `manual_dir`.
    Classification configs:
      ISBI2016_ISIC_Part3_Training_Data.zip, ISBI2016_ISIC_Part3_Training_GroundTruth.csv,
      ISBI2016_ISIC_Part3_Test_Data.zip, ISBI2016_ISIC_Part3_Test_GroundTruth.csv
    Segmentation configs (images and masks of Part 1, labels of Part 3):
      ISBI2016_ISIC_Part1_Training_Data.zip, ISBI2016_ISIC_Part1_Training_GroundTruth.zip,
      ISBI2016_ISIC_Part1_Test_Data.zip, ISBI2016_ISIC_Part1_Test_GroundTruth.zip,
      ISBI2016_ISIC_Part3_Training_GroundTruth.csv, ISBI2016_ISIC_Part3_Test_GroundTruth.csv
    """
    BUILDER_CONFIGS = common.lesion_configs("Part 3 images", "Part 1 images and masks")
    DEFAULT_BUILDER_CONFIG_NAME = "classification_512"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://challenge.isic-archive.com/data/#2016")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        segmentation = self.builder_config.segmentation
        expected = {
            split: _expected_files(part, segmentation=segmentation)
            for split, part in _SPLITS.items()
        }
        found = manual_files.locate_manual_files(
            dl_manager,
            [name for files in expected.values() for name in files.values()],
            dataset=_NAME,
            instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS,
        )
        return {
            split: self._generate_examples(
                split=split,
                **{key: found.get(name.rstrip("/")) for key, name in files.items()},
            )
            for split, files in expected.items()
        }

    def _generate_examples(self, split, labels, images, masks=None):
        label_csv = labels
        diagnoses, lines = _read_labels(label_csv)
        paths = manual_files.id_paths(
            label_csv, lines, (images, "{id}.jpg"), masks and (masks, "{id}_Segmentation.png")
        )
        on_disk = {p.stem: p for p in images.iterdir() if _IMAGE_RE.match(p.name)}
        generation.report_unlabeled(
            self, split, (p for i, p in on_disk.items() if i not in diagnoses), label_csv
        )
        max_side = self.builder_config.max_side
        for image_id, diagnosis in diagnoses.items():

            def make(image_id=image_id, diagnosis=diagnosis):
                image_path, mask_path = paths[image_id]
                return common.example_from_files(
                    image_path,
                    mask_path,
                    max_side=max_side,
                    dataset=_NAME,
                    image_id=image_id,
                    diagnosis=diagnosis,
                    image_type="dermoscopic",
                )

            example = generation.example_or_skip(self, split, make)
            if example is not None:
                yield image_id, example
        self.log_skipped(split)
