"""ISIC 2018 challenge: Task 1 lesion segmentation and Task 3 (HAM10000) seven-class diagnosis.

Two tasks with different images, so two families of configs:
  * `classification_*`: Task 3. Training = HAM10000's 10,015 images, diagnosis from the one-hot
    `ISIC2018_Task3_Training_GroundTruth.csv`, lesion id, age, sex and site from
    `HAM10000_metadata.csv`. Validation (193) and test (1,512) when their files are present.
  * `segmentation_*`: Task 1. 2,594 training images with binary lesion masks (validation 100,
    test 1,000 when present). The challenge gives these images no diagnosis, so their examples
    carry the image, the mask, ids and hashes only, not the classification fields.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files
from tfmelanoma.errors import LabelError
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)

_NAME = "isic2018"
_STEMS = {"train": "Training", "validation": "Validation", "test": "Test"}
_OPTIONAL_SPLITS = ("validation", "test")
# Task 3 one-hot columns -> HAM10000 dx codes (the label map's isic2018 rows).
TASK3_CLASSES = {
    "MEL": "mel",
    "NV": "nv",
    "BCC": "bcc",
    "AKIEC": "akiec",
    "BKL": "bkl",
    "DF": "df",
    "VASC": "vasc",
}
HAM_METADATA = "HAM10000_metadata.csv"


def task1_names(split: str) -> tuple[str, str]:
    """(image folder, mask folder) of a Task 1 split, as the official zips name them."""
    stem = _STEMS[split]
    return f"ISIC2018_Task1-2_{stem}_Input", f"ISIC2018_Task1_{stem}_GroundTruth"


def task3_names(split: str) -> tuple[str, str]:
    """(image folder, ground-truth folder holding `<folder>.csv`) of a Task 3 split."""
    stem = _STEMS[split]
    return f"ISIC2018_Task3_{stem}_Input", f"ISIC2018_Task3_{stem}_GroundTruth"


MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download from https://challenge.isic-archive.com/data/#2018 (CC BY-NC 4.0) and place the zips (or
their extracted folders of the same name) in the manual directory (default
~/tensorflow_datasets/downloads/manual/).
classification_* configs (Task 3):
  {task3_names("train")[0]}.zip, {task3_names("train")[1]}.zip  (holds {task3_names("train")[1]}.csv)
  {HAM_METADATA}  (lesion ids, age, sex, site; Harvard Dataverse, doi:10.7910/DVN/DBW86T)
  optional: {task3_names("validation")[0]}.zip + {task3_names("validation")[1]}.zip,
            {task3_names("test")[0]}.zip + {task3_names("test")[1]}.zip
segmentation_* configs (Task 1):
  {task1_names("train")[0]}.zip, {task1_names("train")[1]}.zip  (ISIC_0000000_segmentation.png ...)
  optional: the Validation and Test pairs, named the same way.
"""


class GroundTruthError(LabelError):
    """A Task 3 ground-truth row that is not one-hot, or disagrees with HAM10000's dx."""


def _segmentation_features() -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
            "segmentation_mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
            "image_id": tfds.features.Text(),
            "source": tfds.features.Text(),
            "image_type": tfds.features.Text(),
            "sha256": tfds.features.Text(),
            "phash": tfds.features.Text(),
        }
    )


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for ISIC 2018 Task 1 (segmentation) and Task 3 (HAM10000 classification)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = common.lesion_configs(
        "Task 3 (HAM10000, 600x450 images)", "Task 1 images and masks (up to 6688x4439)"
    )
    DEFAULT_BUILDER_CONFIG_NAME = "classification_original"

    def _info(self) -> tfds.core.DatasetInfo:
        segmentation = self.builder_config.segmentation
        features = _segmentation_features() if segmentation else None
        return common.lesion_info(
            self, "https://challenge.isic-archive.com/data/#2018", features=features
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        segmentation = self.builder_config.segmentation
        names_of = task1_names if segmentation else task3_names
        manual = Path(dl_manager.manual_dir)
        splits, expected = [], []
        for split in _STEMS:
            names = [f"{n}/" for n in names_of(split)]
            present = any(
                (manual / n).exists() or (manual / f"{n}.zip").exists() for n in names_of(split)
            )
            if split in _OPTIONAL_SPLITS and not present:
                continue
            splits.append(split)
            expected += names
        if not segmentation:
            expected.append(HAM_METADATA)
        found = manual_files.locate_manual_files(
            dl_manager, expected, dataset=_NAME, instructions=MANUAL_DOWNLOAD_INSTRUCTIONS
        )
        generators = {}
        for split in splits:
            images, labels_dir = (found[n] for n in names_of(split))
            generators[split] = self._generate_examples(
                split=split,
                image_dir=images,
                labels=labels_dir if segmentation else labels_dir / f"{names_of(split)[1]}.csv",
                ham=found[HAM_METADATA] if split == "train" and not segmentation else None,
            )
        return generators

    def _generate_examples(self, split: str, image_dir: Path, labels: Path, ham: Path | None):
        """Task 1 examples (`labels` = mask folder) or Task 3 ones (`labels` = ground-truth CSV)."""
        if self.builder_config.segmentation:
            return self._segmentation_examples(split, image_dir, labels)
        return self._classification_examples(split, image_dir, labels, ham)

    def _classification_examples(self, split, image_dir: Path, gt: Path, ham: Path | None):
        rows, errors = read_task3(gt)
        metadata = read_ham_metadata(ham) if ham else {}
        for error in errors.values():
            self.handle_bad_file(split, error)
        images = {p.stem: p for p in image_dir.iterdir() if p.suffix.lower() == ".jpg"}
        generation.report_unlabeled(
            self, split, [images[i] for i in images.keys() - rows.keys() - errors.keys()], gt
        )
        # Contradicting or image-less rows are reported before any image is decoded.
        good = {}
        for image_id, dx in rows.items():
            meta = metadata.get(image_id, {})
            if meta and meta["dx"] != dx:
                self.handle_bad_file(
                    split,
                    GroundTruthError(f"{gt}: {image_id} is {dx!r} but {ham} says {meta['dx']!r}"),
                )
            elif image_id not in images:
                self.handle_bad_file(
                    split,
                    common.ImageReadError(f"{image_dir / image_id}.jpg: listed in {gt}, missing"),
                )
            else:
                good[image_id] = (dx, meta)
        max_side = self.builder_config.max_side
        for image_id, (dx, meta) in good.items():

            def make(image_id=image_id, dx=dx, meta=meta):
                return common.make_example(
                    dataset=_NAME,
                    image=common.read_image(images[image_id], max_side=max_side),
                    image_id=image_id,
                    diagnosis=dx,
                    lesion_id=meta.get("lesion_id", ""),
                    age=meta.get("age"),
                    sex=meta.get("sex"),
                    anatomic_site=meta.get("localization"),
                    image_type="dermoscopic",
                )

            example = generation.example_or_skip(self, split, make)
            if example is not None:
                yield image_id, example
        self.log_skipped(split)

    def _segmentation_examples(self, split, image_dir: Path, mask_dir: Path):
        images = {p.stem: p for p in image_dir.iterdir() if p.suffix.lower() == ".jpg"}
        suffix = "_segmentation"
        masks = {
            p.stem[: -len(suffix)]: p
            for p in mask_dir.iterdir()
            if p.suffix.lower() == ".png" and p.stem.endswith(suffix)
        }
        generation.report_unlabeled(
            self, split, [images[i] for i in images.keys() - masks.keys()], mask_dir
        )
        for image_id in sorted(masks.keys() - images.keys()):
            self.handle_bad_file(
                split,
                common.ImageReadError(f"{masks[image_id]}: mask without an image in {image_dir}"),
            )
        max_side = self.builder_config.max_side
        for image_id in sorted(images.keys() & masks.keys()):

            def make(image_id=image_id):
                image = common.read_image(images[image_id], max_side=max_side)
                return {
                    "image": image.array,
                    "segmentation_mask": common.read_mask(masks[image_id], images[image_id], image),
                    "image_id": image_id,
                    "source": _NAME,
                    "image_type": "dermoscopic",
                    "sha256": image.sha256,
                    "phash": image.phash,
                }

            example = generation.example_or_skip(self, split, make)
            if example is not None:
                yield image_id, example
        self.log_skipped(split)


def read_task3(gt: Path) -> tuple[dict[str, str], dict[str, GroundTruthError]]:
    """Task 3 one-hot ground truth -> ({image: dx code}, {image: error for non-one-hot rows}).

    Raises:
        GroundTruthError: a column is missing, or an image is listed twice with different
            labels (naming the file, the id and both lines).
    """
    rows, errors = manual_files.one_hot_ground_truth(
        gt, "image", list(TASK3_CLASSES), error=GroundTruthError
    )
    return {row["image"]: TASK3_CLASSES[hot] for _, row, hot in rows}, errors


def read_ham_metadata(path: Path) -> dict[str, dict[str, str]]:
    """HAM10000_metadata.csv -> {image_id: row} (lesion_id, dx, dx_type, age, sex, localization)."""
    required = ["lesion_id", "image_id", "dx", "age", "sex", "localization"]
    return {
        r["image_id"]: r for _, r in manual_files.read_csv(path, required, error=GroundTruthError)
    }
