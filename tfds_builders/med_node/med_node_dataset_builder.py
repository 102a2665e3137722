"""MED-NODE: 70 melanoma and 100 naevus clinical (non-dermoscopic) photographs, UMCG Groningen."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files

_NAME = "med_node"
_ROOT = "complete_mednode_dataset/"
_CLASSES = ("melanoma", "naevus")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for MED-NODE (one `train` split; the merge step makes held-out splits)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download `complete_mednode_dataset.zip` from
    https://www.cs.rug.nl/~imaging/databases/melanoma_naevi/ and put the zip, or its extracted
    `complete_mednode_dataset/` folder (with `melanoma/` and `naevus/` inside), in `manual_dir`.
    """
    BUILDER_CONFIGS = [
        common.LesionConfig(
            name="resized_512",
            description="Images resized to a 512 px long side.",
            max_side=512,
            image_type="clinical",
        ),
        common.LesionConfig(
            name="original", description="Images at original size.", image_type="clinical"
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "resized_512"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://www.cs.rug.nl/~imaging/databases/melanoma_naevi/")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = manual_files.locate_manual_files(
            dl_manager, [_ROOT], dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )[_ROOT.rstrip("/")]
        manual_files.check_manual_files(
            root, _CLASSES, dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )
        # No official split: everything is `train`.
        return {"train": self._generate_examples(split="train", root=root)}

    def _generate_examples(self, split: str, root: Path):
        return generation.class_folder_examples(
            self,
            dataset=_NAME,
            split=split,
            root=root,
            classes=_CLASSES,
            image_suffixes=_IMAGE_SUFFIXES,
            image_type="clinical",
        )
