"""PAD-UFES-20: 2,298 smartphone clinical photos of 1,641 lesions of 1,373 patients, six diagnoses.

Collected by the Dermatological and Surgical Assistance Program of the Federal University of
Espirito Santo (Brazil). `metadata.csv` gives patient and lesion ids, the diagnosis (ACK, BCC, MEL,
NEV, SCC, SEK; Bowen's disease is filed under SCC), age, gender, body region and 20 more clinical
fields; the images (PNG) come in three archives `imgs_part_1..3`. There is no official split:
everything is `train`, and tfmelanoma's merge step splits by patient.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files
from tfmelanoma.errors import LabelError
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)

_NAME = "pad_ufes_20"
METADATA = "metadata.csv"
PARTS = ("imgs_part_1", "imgs_part_2", "imgs_part_3")
REQUIRED_COLUMNS = ("patient_id", "lesion_id", "img_id", "diagnostic", "age", "gender", "region")

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download PAD-UFES-20 from Mendeley Data, https://data.mendeley.com/datasets/zr7vgbcyr2/1
(doi:10.17632/zr7vgbcyr2.1, CC BY 4.0), unzip it and place in the manual directory (default
~/tensorflow_datasets/downloads/manual/):
  {METADATA}
  images/imgs_part_1.zip, images/imgs_part_2.zip, images/imgs_part_3.zip
      (as downloaded; or extracted, as images/imgs_part_1/PAT_1516_1765_530.png ... -- a doubled
      images/imgs_part_1/imgs_part_1/ or a top-level imgs_part_1/ is found too)
"""


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for PAD-UFES-20 (clinical smartphone images)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        common.LesionConfig(
            name="resized_512",
            max_side=512,
            image_type="clinical",
            description="Long side shrunk to 512 px at preparation.",
        ),
        common.LesionConfig(
            name="original", image_type="clinical", description="PNGs at the downloaded size."
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "resized_512"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://data.mendeley.com/datasets/zr7vgbcyr2/1")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = Path(dl_manager.manual_dir)
        part_dirs, missing = {}, []
        for part in PARTS:
            found = _find_part(root, part, dl_manager)
            if found is None:
                missing.append(f"{root}/images/{part}.zip (or an extracted images/{part}/)")
            else:
                part_dirs[part] = found
        if not (root / METADATA).is_file():
            missing.insert(0, str(root / METADATA))
        if missing:
            listing = "\n".join(f"  - {m}" for m in missing)
            raise common.MissingFilesError(
                f"{_NAME}: {len(missing)} expected file(s) missing from the manual download "
                f"directory {root}:\n{listing}\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        return {"train": self._generate_examples(root / METADATA, list(part_dirs.values()))}

    def _generate_examples(self, metadata: Path, part_dirs: list[Path]):
        split = "train"
        rows = read_metadata(metadata)
        images: dict[str, Path] = {}
        for folder in part_dirs:
            images.update({p.name: p for p in folder.iterdir() if p.suffix.lower() == ".png"})
        generation.report_unlabeled(
            self, split, [images[n] for n in images.keys() - rows.keys()], metadata
        )
        # Rows without an image are reported before any image is decoded.
        for img_id in [i for i in rows if i not in images]:
            self.handle_bad_file(
                split,
                common.ImageReadError(f"{img_id}: listed in {metadata}, not in any of {PARTS}"),
            )
            del rows[img_id]
        max_side = self.builder_config.max_side
        for img_id, row in rows.items():

            def make(img_id=img_id, row=row):
                return common.make_example(
                    dataset=_NAME,
                    image=common.read_image(images[img_id], max_side=max_side),
                    image_id=Path(img_id).stem,
                    diagnosis=row["diagnostic"],
                    patient_id=row["patient_id"],
                    lesion_id=row["lesion_id"],
                    age=row["age"],
                    sex=row["gender"],
                    anatomic_site=row["region"],
                    image_type="clinical",
                )

            example = generation.example_or_skip(self, split, make)
            if example is not None:
                yield Path(img_id).stem, example
        self.log_skipped(split)


def _find_part(root: Path, part: str, dl_manager) -> Path | None:
    """The folder holding one part's PNGs: extracted in one of the usual places, or its zip."""
    for base in (root / "images", root):
        for folder in (base / part / part, base / part):
            if folder.is_dir():  # the doubled folder first: a zip extracted into its own name
                return folder
    for archive in (root / "images" / f"{part}.zip", root / f"{part}.zip"):
        if archive.is_file():
            extracted = Path(dl_manager.extract(archive))
            return extracted / part if (extracted / part).is_dir() else extracted
    return None


def read_metadata(path: Path) -> dict[str, dict[str, str]]:
    """metadata.csv -> {img_id: row}, in file order.

    Raises:
        common.MissingColumnError: a required column is missing (naming the file and columns).
        tfmelanoma.errors.LabelError: an img_id repeats (naming the file and line).
    """
    rows: dict[str, dict[str, str]] = {}
    for line, r in manual_files.read_csv(path, REQUIRED_COLUMNS):
        if r["img_id"] in rows:
            raise LabelError(f"{path}:{line}: img_id {r['img_id']} appears twice")
        rows[r["img_id"]] = r
    return rows
