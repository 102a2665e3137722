"""Kaggle "Skin Cancer: Malignant vs. Benign" (fanconic): train/test x benign/malignant folders."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files

_NAME = "kaggle_fanconic"
_CLASSES = ("benign", "malignant")
_SPLITS = {"train": "train", "test": "test"}
_ZIP_NAMES = ("archive.zip", "skin-cancer-malignant-vs-benign.zip")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _find_root(dl_manager: tfds.download.DownloadManager, instructions: str) -> Path:
    """The folder holding `train/` and `test/`: the manual dir, its `data/`, or a Kaggle zip."""
    manual = Path(dl_manager.manual_dir)
    candidates = [manual, manual / "data"]
    if not any(all((c / s).is_dir() for s in _SPLITS.values()) for c in candidates):
        for zip_name in _ZIP_NAMES:
            if (manual / zip_name).is_file():
                extracted = Path(dl_manager.extract(manual / zip_name))
                candidates += [extracted, extracted / "data"]
    for root in candidates:
        if all((root / s).is_dir() for s in _SPLITS.values()):
            return root
    # Nothing complete: report every expected folder under the manual dir.
    names = [f"{s}/{c}/" for s in _SPLITS.values() for c in _CLASSES]
    manual_files.check_manual_files(
        manual, [n.rstrip("/") for n in names], dataset=_NAME, instructions=instructions
    )
    return manual


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for the Kaggle "Skin Cancer: Malignant vs. Benign" images."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download "Skin Cancer: Malignant vs. Benign" from
    https://www.kaggle.com/datasets/fanconic/skin-cancer-malignant-vs-benign
    (`archive.zip` from the web page, or `skin-cancer-malignant-vs-benign.zip` from
    `kaggle datasets download fanconic/skin-cancer-malignant-vs-benign`) and put the zip, or its
    extracted folders `train/benign/`, `train/malignant/`, `test/benign/`, `test/malignant/`,
    in `manual_dir`.
    """
    BUILDER_CONFIGS = [
        common.LesionConfig(
            name="original",
            description="The 224x224 images as distributed; binary benign/malignant labels.",
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "original"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(
            self, "https://www.kaggle.com/datasets/fanconic/skin-cancer-malignant-vs-benign"
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = _find_root(dl_manager, self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        missing = [f"{s}/{c}" for s in _SPLITS.values() for c in _CLASSES]
        manual_files.check_manual_files(
            root, missing, dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )
        return {
            split: self._generate_examples(split=split, split_dir=root / folder)
            for split, folder in _SPLITS.items()
        }

    def _generate_examples(self, split: str, split_dir: Path):
        return generation.class_folder_examples(
            self,
            dataset=_NAME,
            split=split,
            root=split_dir,
            classes=_CLASSES,
            image_suffixes=_IMAGE_SUFFIXES,
            image_type="dermoscopic",
            id_prefix=f"{split_dir.name}/",
        )
