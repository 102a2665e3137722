"""ISIC 2016 (ISBI 2016) challenge: Part 1 lesion masks and Part 3 benign / malignant labels."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common

_NAME = "isic2016"
_SPLITS = {"train": "Training", "test": "Test"}
_IMAGE_RE = re.compile(r"^ISIC_\d+\.jpg$")
# Training ground truth says benign/malignant, the test ground truth 0.0/1.0.
_LABEL_VALUES = {
    "benign": "benign",
    "malignant": "malignant",
    "0": "benign",
    "1": "malignant",
    "0.0": "benign",
    "1.0": "malignant",
}


def _expected_files(part: str, *, segmentation: bool) -> dict[str, str]:
    files = {"labels": f"ISBI2016_ISIC_Part3_{part}_GroundTruth.csv"}
    if segmentation:
        files["images"] = f"ISBI2016_ISIC_Part1_{part}_Data/"
        files["masks"] = f"ISBI2016_ISIC_Part1_{part}_GroundTruth/"
    else:
        files["images"] = f"ISBI2016_ISIC_Part3_{part}_Data/"
    return files


def _read_labels(path: Path) -> dict[str, str]:
    """Part 3 ground truth (no header): image_id -> benign / malignant."""
    labels = {}
    with path.open(newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or not row[0].startswith("ISIC_"):
                continue  # blank line or a header added by a re-pack
            value = row[1].strip().lower() if len(row) > 1 else ""
            if value not in _LABEL_VALUES:
                raise ValueError(
                    f"{path}:{line_no}: label {value!r} for {row[0]} is not one of "
                    f"{sorted(_LABEL_VALUES)}"
                )
            labels[row[0]] = _LABEL_VALUES[value]
    return labels


class Builder(common.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
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
    BUILDER_CONFIGS = [
        common.LesionConfig(
            name="classification_512",
            description="Part 3 images resized to a 512 px long side.",
            max_side=512,
        ),
        common.LesionConfig(
            name="classification_original", description="Part 3 images at original size."
        ),
        common.LesionConfig(
            name="segmentation_512",
            description="Part 1 images and masks resized to a 512 px long side.",
            max_side=512,
            segmentation=True,
        ),
        common.LesionConfig(
            name="segmentation_original",
            description="Part 1 images and masks at original size.",
            segmentation=True,
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "classification_512"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://challenge.isic-archive.com/data/#2016")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        segmentation = self.builder_config.segmentation
        expected = {
            split: _expected_files(part, segmentation=segmentation)
            for split, part in _SPLITS.items()
        }
        found = common.locate_manual_files(
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
        labels = _read_labels(label_csv)
        on_disk = {p.stem: p for p in images.iterdir() if _IMAGE_RE.match(p.name)}
        common.report_unlabeled(
            self, split, (p for i, p in on_disk.items() if i not in labels), label_csv
        )
        max_side = self.builder_config.max_side
        for image_id, diagnosis in labels.items():

            def make(image_id=image_id, diagnosis=diagnosis):
                image = common.read_image(images / f"{image_id}.jpg", max_side=max_side)
                mask = None
                if masks is not None:
                    mask = common.read_mask(
                        masks / f"{image_id}_Segmentation.png", size=image.array.shape[:2]
                    )
                return common.make_example(
                    dataset=_NAME,
                    image=image,
                    image_id=image_id,
                    diagnosis=diagnosis,
                    image_type="dermoscopic",
                    mask=mask,
                )

            example = common.example_or_skip(self, split, make)
            if example is not None:
                yield image_id, example
        self.log_skipped(split)
