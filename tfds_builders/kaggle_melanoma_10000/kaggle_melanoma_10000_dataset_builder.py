"""Kaggle "Melanoma Skin Cancer Dataset of 10000 Images" (Javid): 10,605 dermoscopic 300x300 JPEGs.

Folders `melanoma_cancer_dataset/{train,test}/{benign,malignant}/` (train 5,000 benign / 4,605
malignant, test 500 / 500), the set the small-CNN paper trains on. Labels are the folder names;
there are no patient or lesion ids and no metadata.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files

_NAME = "kaggle_melanoma_10000"
ROOT = "melanoma_cancer_dataset"
CLASSES = ("benign", "malignant")
SPLITS = ("train", "test")
ZIP_NAMES = ("archive.zip", "melanoma-skin-cancer-dataset-of-10000-images.zip")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download "Melanoma Skin Cancer Dataset of 10000 Images" from
https://www.kaggle.com/datasets/hasnainjaved/melanoma-skin-cancer-dataset-of-10000-images
(`archive.zip` from the web page, or `{ZIP_NAMES[1]}` from
`kaggle datasets download hasnainjaved/melanoma-skin-cancer-dataset-of-10000-images`) and put the
zip, or its extracted folder `{ROOT}/` (with train/benign/, train/malignant/, test/benign/,
test/malignant/), in the manual directory (default ~/tensorflow_datasets/downloads/manual/).
"""


def _find_root(dl_manager: tfds.download.DownloadManager) -> Path:
    """The `melanoma_cancer_dataset` folder, extracted by the user or from the Kaggle zip."""
    manual = Path(dl_manager.manual_dir)
    if not (manual / ROOT).is_dir():
        for zip_name in ZIP_NAMES:
            if (manual / zip_name).is_file():
                extracted = Path(dl_manager.extract(manual / zip_name))
                return extracted / ROOT if (extracted / ROOT).is_dir() else extracted
    return manual / ROOT


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for the Kaggle 10,000-image melanoma set (binary labels)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        common.LesionConfig(
            name="original",
            description="The 300x300 images as distributed; binary benign/malignant labels.",
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "original"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(
            self,
            "https://www.kaggle.com/datasets/hasnainjaved/melanoma-skin-cancer-dataset-of-10000-images",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = _find_root(dl_manager)
        # Reported relative to the manual dir when nothing was extracted from a zip.
        base = root.parent
        manual_files.check_manual_files(
            base,
            [f"{root.name}/{s}/{c}" for s in SPLITS for c in CLASSES],
            dataset=_NAME,
            instructions=MANUAL_DOWNLOAD_INSTRUCTIONS,
        )
        return {
            split: self._generate_examples(split=split, split_dir=root / split) for split in SPLITS
        }

    def _generate_examples(self, split: str, split_dir: Path):
        return generation.class_folder_examples(
            self,
            dataset=_NAME,
            split=split,
            root=split_dir,
            classes=CLASSES,
            image_suffixes=_IMAGE_SUFFIXES,
            image_type="dermoscopic",
            id_prefix=f"{split}/",
        )
