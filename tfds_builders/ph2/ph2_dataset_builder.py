"""PH2: 200 dermoscopic images (Hospital Pedro Hispano) with lesion masks and clinical diagnosis."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common
from tfmelanoma import labels
from tfmelanoma.errors import LabelError

_NAME = "ph2"
_ROOT = "PH2Dataset/"
_IMAGES = "PH2 Dataset images"
_TABLE = "PH2_dataset.txt"
# "Clinical Diagnosis" column of PH2_dataset.txt.
_CLINICAL_DIAGNOSIS = {"0": "common_nevus", "1": "atypical_nevus", "2": "melanoma"}


def _read_table(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """`PH2_dataset.txt`, a "||"-separated table: case name -> diagnosis string, and its line.

    Columns after splitting on "||": "", Name, Histological Diagnosis, Clinical Diagnosis
    (0 common nevus, 1 atypical nevus, 2 melanoma), dermoscopic criteria, colours; a legend
    follows the table.

    Raises:
        tfmelanoma.errors.LabelError: an unknown clinical diagnosis, or a case listed twice with
            different diagnoses (naming the file, line, case and value).
    """
    entries, lines = [], {}
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            fields = [p.strip() for p in line.split("||")]
            if len(fields) < 4 or not fields[1].startswith("IMD"):
                continue  # header, legend or blank line
            if fields[3] not in _CLINICAL_DIAGNOSIS:
                raise LabelError(
                    f"{path}:{line_no}: clinical diagnosis {fields[3]!r} of {fields[1]} is not "
                    f"one of {sorted(_CLINICAL_DIAGNOSIS)}"
                )
            entries.append((fields[1], _CLINICAL_DIAGNOSIS[fields[3]], f"line {line_no}"))
            lines.setdefault(fields[1], line_no)
    if not entries:
        raise ValueError(f"{path}: no case rows (`|| IMDxxx || ... ||`) found")
    return labels.unique_labels(entries, path=path), lines


class Builder(common.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for PH2 (classification and segmentation configs)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Request and download `PH2Dataset.rar` from https://www.fc.up.pt/addi/ph2%20database.html
    (research and education use), extract it (TFDS cannot open .rar), and put the extracted
    `PH2Dataset/` folder in `manual_dir` (a `PH2Dataset.zip` re-pack of that folder also works).
    The builder reads `PH2Dataset/PH2_dataset.txt` and
    `PH2Dataset/PH2 Dataset images/IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp` (+ `IMDxxx_lesion/`).
    """
    BUILDER_CONFIGS = [
        common.LesionConfig(
            name="classification_512",
            description="Images resized to a 512 px long side.",
            max_side=512,
        ),
        common.LesionConfig(name="classification_original", description="Original 768x560 images."),
        common.LesionConfig(
            name="segmentation_512",
            description="Images and lesion masks resized to a 512 px long side.",
            max_side=512,
            segmentation=True,
        ),
        common.LesionConfig(
            name="segmentation_original",
            description="Original images with their lesion masks.",
            segmentation=True,
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "classification_512"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://www.fc.up.pt/addi/ph2%20database.html")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = common.locate_manual_files(
            dl_manager, [_ROOT], dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )[_ROOT.rstrip("/")]
        common.check_manual_files(
            root, [_TABLE, _IMAGES], dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )
        # PH2 has no official split: everything is `train`; the merge step splits it.
        return {"train": self._generate_examples(split="train", root=root)}

    def _generate_examples(self, split: str, root: Path):
        table = root / _TABLE
        cases, lines = _read_table(table)
        images_dir = root / _IMAGES
        paths = common.id_paths(
            table,
            lines,
            (images_dir, "{id}/{id}_Dermoscopic_Image/{id}.bmp"),
            (images_dir, "{id}/{id}_lesion/{id}_lesion.bmp"),
        )
        case_dirs = {p.name: p for p in images_dir.iterdir() if p.is_dir()}
        common.report_unlabeled(
            self, split, (p for name, p in case_dirs.items() if name not in cases), table
        )
        max_side = self.builder_config.max_side
        segmentation = self.builder_config.segmentation
        for case, diagnosis in cases.items():

            def make(case=case, diagnosis=diagnosis):
                image_path, mask_path = paths[case]
                image = common.read_image(image_path, max_side=max_side)
                mask = common.read_mask(mask_path, image_path, image) if segmentation else None
                return common.make_example(
                    dataset=_NAME,
                    image=image,
                    image_id=case,
                    diagnosis=diagnosis,
                    image_type="dermoscopic",
                    mask=mask,
                )

            example = common.example_or_skip(self, split, make)
            if example is not None:
                yield case, example
        self.log_skipped(split)
