"""ISIC 2019 challenge: 25,331 dermoscopic training images in nine classes, with metadata.

The training set mixes HAM10000 (Vienna), BCN20000 (Barcelona) and MSK images; `lesion_id` is set
for the HAM and BCN images (and some MSK ones). The official test set's labels were published after
the challenge as `ISIC_2019_Test_GroundTruth.csv`; with that file in the manual directory a labelled
`test` split is built, without it there is no test split (the 8,238 test images alone carry no
label, and the common schema has no "unlabelled" value).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files
from tfmelanoma import labels
from tfmelanoma.errors import LabelError
from tfmelanoma.fsio import path_under
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)

_NAME = "isic2019"
CLASSES = labels.HARMONISED_CLASSES  # the ground-truth CSV's one-hot columns, in this order
TRAIN_INPUT = "ISIC_2019_Training_Input"
TRAIN_GT = "ISIC_2019_Training_GroundTruth.csv"
TRAIN_META = "ISIC_2019_Training_Metadata.csv"
TEST_INPUT = "ISIC_2019_Test_Input"
TEST_GT = "ISIC_2019_Test_GroundTruth.csv"
TEST_META = "ISIC_2019_Test_Metadata.csv"

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download from https://challenge.isic-archive.com/data/#2019 (ISIC 2019 challenge, CC BY-NC 4.0)
and place in the manual directory (default ~/tensorflow_datasets/downloads/manual/):
  {TRAIN_INPUT}.zip  (9.1 GB; or extracted: {TRAIN_INPUT}/ISIC_0000000.jpg ...)
  {TRAIN_GT}
  {TRAIN_META}
Optional, for a labelled `test` split (all three needed):
  {TEST_INPUT}.zip  (or extracted: {TEST_INPUT}/ISIC_0034321.jpg ...)
  {TEST_GT}  (published after the challenge; without it no test split is built)
  {TEST_META}
"""


class Row(NamedTuple):
    """One labelled image, as read from the CSVs (small, picklable: Beam ships these)."""

    image_id: str
    path: str
    diagnosis: str
    age: str
    sex: str
    site: str
    lesion_id: str


class GroundTruthError(LabelError):
    """A ground-truth row that is not exactly one-hot over the nine classes."""


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for the ISIC 2019 challenge (training set; test set when labelled).

    Builder kwargs: `skip_bad_files` (see `generation.BadFilePolicyMixin`) and `use_beam`
    (generate with Apache Beam, `pip install apache-beam`; pass a runner through
    `tfds.download.DownloadConfig(beam_runner=...)` or let TFDS use the DirectRunner).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        common.LesionConfig(
            name="resized_512",
            max_side=512,
            description="Long side shrunk to 512 px at preparation (about 2 GB instead of 9).",
        ),
        common.LesionConfig(name="original", description="Images at their downloaded size."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "resized_512"

    def __init__(self, *, use_beam: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.use_beam = use_beam
        self._original_state["use_beam"] = use_beam  # kept when pickled (Beam)

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://challenge.isic-archive.com/data/#2019")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        files = manual_files.locate_manual_files(
            dl_manager,
            [f"{TRAIN_INPUT}/", TRAIN_GT, TRAIN_META],
            dataset=_NAME,
            instructions=MANUAL_DOWNLOAD_INSTRUCTIONS,
        )
        splits = {
            "train": self._split("train", files[TRAIN_INPUT], files[TRAIN_GT], files[TRAIN_META])
        }
        if (Path(dl_manager.manual_dir) / TEST_GT).exists():
            test = manual_files.locate_manual_files(
                dl_manager,
                [f"{TEST_INPUT}/", TEST_GT, TEST_META],
                dataset=_NAME,
                instructions=MANUAL_DOWNLOAD_INSTRUCTIONS,
            )
            splits["test"] = self._split("test", test[TEST_INPUT], test[TEST_GT], test[TEST_META])
        else:
            logger.info("%s: no %s in the manual dir, so no test split", _NAME, TEST_GT)
        return splits

    def _split(self, split: str, image_dir: Path, ground_truth: Path, metadata: Path):
        rows = self._checked_rows(split, image_dir, ground_truth, metadata)
        return self._generate_examples(split=split, rows=rows)

    def _checked_rows(
        self, split: str, image_dir: Path, ground_truth: Path, metadata: Path
    ) -> list[Row]:
        """Reads the CSVs and pairs them with the image folder, before anything is written.

        Bad rows (not one-hot, image missing) and images without a row go through the bad-file
        policy: an error naming the file, or skipped and counted with `skip_bad_files=True`.
        """
        rows, errors = read_rows(image_dir, ground_truth, metadata)
        return generation.pair_rows_with_images(self, split, rows, errors, image_dir, ground_truth)

    def _generate_examples(self, split: str, rows: list[Row]):
        return generation.row_examples(self, split, rows, example_from_row, _NAME)


def read_rows(
    image_dir: Path, ground_truth: Path, metadata: Path
) -> tuple[list[Row], dict[str, GroundTruthError]]:
    """Joins the one-hot ground truth with the metadata CSV; one row per image id.

    Args:
        image_dir: folder of `<image>.jpg` files (not read here; paths are built).
        ground_truth: `image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK` (one-hot floats; extra columns
            such as the test file's `score_weight` are ignored).
        metadata: `image,age_approx,anatom_site_general,[lesion_id,]sex`.

    Returns:
        The rows, in ground-truth order, and {image id: error} for rows that are not one-hot
        (a cell other than 0/1, two classes or none marked).

    Raises:
        GroundTruthError: a CSV lacks a required column (naming the file and the column), or an
            image is listed twice with different labels (an identical repeat is kept once).
        tfmelanoma.errors.UnsafePathError: an image id that leads out of `image_dir`.
    """
    meta = {
        r["image"]: r
        for _, r in manual_files.read_csv(
            metadata, ["image", "age_approx", "sex"], error=GroundTruthError
        )
    }
    good, errors = manual_files.one_hot_ground_truth(
        ground_truth, "image", list(CLASSES), error=GroundTruthError
    )
    rows = []
    for line, r, hot in good:
        m = meta.get(r["image"], {})
        rows.append(
            Row(
                image_id=r["image"],
                path=str(
                    path_under(image_dir, f"{r['image']}.jpg", source=f"{ground_truth}:{line}")
                ),
                diagnosis=hot,
                age=m.get("age_approx") or "",
                sex=m.get("sex") or "",
                site=m.get("anatom_site_general") or "",
                lesion_id=m.get("lesion_id") or "",
            )
        )
    return rows, errors


def example_from_row(row: Row, max_side: int | None) -> dict:
    """Reads the image of one row and builds its example (raises `common.ImageReadError`)."""
    return common.example_from_files(
        row.path,
        max_side=max_side,
        dataset=_NAME,
        image_id=row.image_id,
        diagnosis=row.diagnosis,
        lesion_id=row.lesion_id,
        age=row.age,
        sex=row.sex,
        anatomic_site=row.site,
        image_type="dermoscopic",
    )
