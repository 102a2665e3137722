"""SIIM-ISIC 2020 challenge: 33,126 dermoscopic training images of 2,056 patients, with lesion ids.

Labels and ids come from `ISIC_2020_Training_GroundTruth_v2.csv` (the v2 file adds `lesion_id`).
The official `ISIC_2020_Training_Duplicates.csv` lists 425 pairs of images of the same lesion that
are near-identical; by default the second image of each pair (`image_name_2`) is dropped so that
the same picture cannot land in both a training and an evaluation split. Configs whose name ends in
`_with_duplicates` keep them. The test set's labels were never published, so there is no test
split.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files
from tfmelanoma import labels
from tfmelanoma.errors import LabelError
from tfmelanoma.fsio import path_under
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)

_NAME = "isic2020"
TRAIN_ZIP = "ISIC_2020_Training_JPEG.zip"
# Where the training JPEGs may be: the official zip extracts to train/; Kaggle ships jpeg/train/.
IMAGE_DIRS = ("train", "ISIC_2020_Training_JPEG/train", "jpeg/train")
GROUND_TRUTH = "ISIC_2020_Training_GroundTruth_v2.csv"
DUPLICATES = "ISIC_2020_Training_Duplicates.csv"

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download from https://challenge.isic-archive.com/data/#2020 (SIIM-ISIC 2020, CC BY-NC 4.0) and
place in the manual directory (default ~/tensorflow_datasets/downloads/manual/):
  {TRAIN_ZIP}  (23 GB; or extracted: train/ISIC_0015719.jpg ...; the Kaggle copy's
      jpeg/train/ is accepted too)
  {GROUND_TRUTH}
  {DUPLICATES}  (needed unless a *_with_duplicates config is used)
The test images have no published labels and are not used.
"""


@dataclasses.dataclass(eq=False)
class Isic2020Config(common.LesionConfig):
    """`LesionConfig` plus `keep_duplicates`: keep both images of each official duplicate pair."""

    keep_duplicates: bool = False


class Row(NamedTuple):
    """One labelled image from the ground-truth CSV (small and picklable for Beam)."""

    image_id: str
    path: str
    diagnosis: str
    patient_id: str
    lesion_id: str
    age: str
    sex: str
    site: str


class GroundTruthError(LabelError):
    """A ground-truth row whose `target` disagrees with its diagnosis, or a missing column."""


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for the SIIM-ISIC 2020 training set.

    Builder kwargs: `skip_bad_files` (see `generation.BadFilePolicyMixin`) and `use_beam` (generate
    with Apache Beam; `pip install apache-beam`).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        Isic2020Config(
            name="resized_512",
            max_side=512,
            description="Long side shrunk to 512 px; second image of each duplicate pair dropped.",
        ),
        Isic2020Config(
            name="original",
            description="Downloaded size (up to 6000x4000); duplicates dropped.",
        ),
        Isic2020Config(
            name="resized_512_with_duplicates",
            max_side=512,
            keep_duplicates=True,
            description="Long side shrunk to 512 px; all 33,126 images, duplicates kept.",
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "resized_512"

    def __init__(self, *, use_beam: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.use_beam = use_beam
        self._original_state["use_beam"] = use_beam  # kept when pickled (Beam)

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://challenge.isic-archive.com/data/#2020")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        image_dir, gt, duplicates = self._locate(dl_manager)
        rows = self._checked_rows("train", image_dir, gt, duplicates)
        return {"train": self._generate_examples(split="train", rows=rows)}

    def _locate(self, dl_manager) -> tuple[Path, Path, Path | None]:
        """The image folder (extracting the zip when only it is there) and the CSVs."""
        root = Path(dl_manager.manual_dir)
        image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
        missing = []
        if image_dir is None and (root / TRAIN_ZIP).is_file():
            extracted = Path(dl_manager.extract(root / TRAIN_ZIP))
            image_dir = extracted / "train" if (extracted / "train").is_dir() else extracted
        elif image_dir is None:
            missing.append(f"{root / TRAIN_ZIP} (or one of {', '.join(IMAGE_DIRS)}/ in {root})")
        names = [GROUND_TRUTH] + ([] if self.builder_config.keep_duplicates else [DUPLICATES])
        missing += [str(root / n) for n in names if not (root / n).is_file()]
        if missing:
            listing = "\n".join(f"  - {m}" for m in missing)
            raise common.MissingFilesError(
                f"{_NAME}: {len(missing)} expected file(s) missing from the manual download "
                f"directory {root}:\n{listing}\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        duplicates = None if self.builder_config.keep_duplicates else root / DUPLICATES
        return image_dir, root / GROUND_TRUTH, duplicates

    def _checked_rows(
        self, split: str, image_dir: Path, gt: Path, duplicates: Path | None
    ) -> list[Row]:
        """Reads the CSVs, drops duplicates, pairs rows with images, before anything is written."""
        rows, errors = read_rows(image_dir, gt)
        dropped = read_duplicates(duplicates) if duplicates else set()
        # A dropped duplicate is listed in the ground truth, so it is not "without a label".
        kept = generation.pair_rows_with_images(
            self, split, rows, errors, image_dir, gt, drop=dropped
        )
        self.info.metadata["duplicates_dropped"] = sum(r.image_id in dropped for r in rows)
        return kept

    def _generate_examples(self, split: str, rows: list[Row]):
        return generation.row_examples(self, split, rows, example_from_row, _NAME)


def read_rows(image_dir: Path, gt: Path) -> tuple[list[Row], dict[str, GroundTruthError]]:
    """Reads the v2 ground truth into rows (one per image); checks `target` against the label map.

    Returns:
        Rows in CSV order and {image name: error} for rows whose target contradicts the diagnosis.

    Raises:
        GroundTruthError: a required column is missing (naming the file and the columns), or an
            image is listed twice with different diagnoses.
        tfmelanoma.errors.UnsafePathError: an image name that leads out of `image_dir`.
    """
    required = ["image_name", "patient_id", "lesion_id", "diagnosis", "target"]
    hint = f"the v2 file {GROUND_TRUTH} is needed: it has lesion_id"
    rows, errors, entries = {}, {}, []
    for line, r in manual_files.read_csv(gt, required, error=GroundTruthError, hint=hint):
        where = f"{gt}:{line}"
        binary = labels.map_diagnosis(_NAME, r["diagnosis"]).binary
        try:
            target = labels.binary_value(
                r["target"], where=where, what="target", image_id=r["image_name"]
            )
        except LabelError as e:
            errors[r["image_name"]] = GroundTruthError(str(e))
            continue
        if target != int(binary == "melanoma"):
            errors[r["image_name"]] = GroundTruthError(
                f"{where}: {r['image_name']} has target {r['target']!r} but diagnosis "
                f"{r['diagnosis']!r} (label map: {binary})"
            )
            continue
        entries.append((r["image_name"], r["diagnosis"], f"line {line}"))
        rows.setdefault(
            r["image_name"],
            Row(
                image_id=r["image_name"],
                path=str(path_under(image_dir, f"{r['image_name']}.jpg", source=where)),
                diagnosis=r["diagnosis"],
                patient_id=r["patient_id"],
                lesion_id=r["lesion_id"],
                age=r.get("age_approx") or "",
                sex=r.get("sex") or "",
                site=r.get("anatom_site_general_challenge") or "",
            ),
        )
    try:
        labels.unique_labels(entries, path=gt)  # an id twice: same label or an error
    except LabelError as e:
        raise GroundTruthError(str(e)) from None
    return list(rows.values()), errors


def read_duplicates(path: Path) -> set[str]:
    """`image_name_2` of every pair in the official duplicates list (the images to drop)."""
    rows = manual_files.read_csv(path, ["image_name_1", "image_name_2"], error=GroundTruthError)
    return {r["image_name_2"] for _, r in rows}


def example_from_row(row: Row, max_side: int | None) -> dict:
    """Reads the image of one row and builds its example (raises `common.ImageReadError`)."""
    return common.example_from_files(
        row.path,
        max_side=max_side,
        dataset=_NAME,
        image_id=row.image_id,
        diagnosis=row.diagnosis,
        patient_id=row.patient_id,
        lesion_id=row.lesion_id,
        age=row.age,
        sex=row.sex,
        anatomic_site=row.site,
        image_type="dermoscopic",
    )
