"""PH2: 200 dermoscopic images (Hospital Pedro Hispano) with lesion masks and clinical diagnosis."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files
from tfds_builders.ph2 import tables
from tfmelanoma.logging_utils import get_logger

_NAME = "ph2"
_ROOT = "PH2Dataset/"
_IMAGES = "PH2 Dataset images"


logger = get_logger(__name__)


def find_root(manual_dir: Path) -> Path | None:
    """The extracted `PH2Dataset/` folder: `manual_dir/PH2Dataset/`, or `manual_dir` itself.

    The builder, `tfmelanoma.segment --data ph2 --data-dir` and the docs name the folder that
    holds `PH2Dataset/`; a user who points at `PH2Dataset/` itself is understood too (logged).
    """
    if (manual_dir / _ROOT / _IMAGES).is_dir():
        return manual_dir / _ROOT
    if (manual_dir / _IMAGES).is_dir():
        logger.info("ph2: %s is the PH2Dataset folder itself; reading it", manual_dir)
        return manual_dir
    return None


def table_path(root: Path) -> Path | None:
    """`PH2_dataset.xlsx` (the official table) if present, else `PH2_dataset.txt`, else None."""
    for name in (tables.XLSX, tables.TXT):
        if (root / name).is_file():
            return root / name
    return None


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for PH2 (classification and segmentation configs)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request and download `PH2Dataset.rar` from https://www.fc.up.pt/addi/ph2%20database.html
    (research and education use), extract it (TFDS cannot open .rar), and put the extracted
    `PH2Dataset/` folder in `manual_dir` (a `PH2Dataset.zip` re-pack of that folder also works).
    (`manual_dir` may also be the `PH2Dataset/` folder itself.) The builder reads the labels from
    `PH2Dataset/PH2_dataset.xlsx` (or, without it, `PH2Dataset/PH2_dataset.txt`, either form)
    and `PH2Dataset/PH2 Dataset images/IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp` (+ `IMDxxx_lesion/`).
    """
    BUILDER_CONFIGS = common.lesion_configs(
        "Images (about 765x572; sizes vary)", "Images with their lesion masks"
    )
    DEFAULT_BUILDER_CONFIG_NAME = "classification_512"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://www.fc.up.pt/addi/ph2%20database.html")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = find_root(Path(dl_manager.manual_dir))
        if root is None:
            root = manual_files.locate_manual_files(
                dl_manager, [_ROOT], dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
            )[_ROOT.rstrip("/")]
        manual_files.check_manual_files(
            root, [_IMAGES], dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )
        if table_path(root) is None:
            raise common.MissingFilesError(
                f"{_NAME}: the label table is missing: neither {root / tables.XLSX} nor "
                f"{root / tables.TXT} exists\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()}"
            )
        # PH2 has no official split: everything is `train`; the merge step splits it.
        return {"train": self._generate_examples(split="train", root=root)}

    def _generate_examples(self, split: str, root: Path):
        table = table_path(root)
        cases, lines = tables.read_labels(table)
        images_dir = root / _IMAGES
        paths = manual_files.id_paths(
            table,
            lines,
            (images_dir, "{id}/{id}_Dermoscopic_Image/{id}.bmp"),
            (images_dir, "{id}/{id}_lesion/{id}_lesion.bmp"),
        )
        case_dirs = {p.name: p for p in images_dir.iterdir() if p.is_dir()}
        generation.report_unlabeled(
            self, split, (p for name, p in case_dirs.items() if name not in cases), table
        )
        max_side = self.builder_config.max_side
        segmentation = self.builder_config.segmentation
        for case, diagnosis in cases.items():

            def make(case=case, diagnosis=diagnosis):
                image_path, mask_path = paths[case]
                return common.example_from_files(
                    image_path,
                    mask_path if segmentation else None,
                    max_side=max_side,
                    dataset=_NAME,
                    image_id=case,
                    diagnosis=diagnosis,
                    image_type="dermoscopic",
                )

            example = generation.example_or_skip(self, split, make)
            if example is not None:
                yield case, example
        self.log_skipped(split)
