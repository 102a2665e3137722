"""ISIC Archive images with their per-image JSON metadata (e.g. the CC0 UDA-1 collection)."""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files

_NAME = "isic_archive"

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download a collection from the ISIC Archive (https://gallery.isic-archive.com, "Download" on a
collection such as UDA-1) and place it in the manual directory (default
~/tensorflow_datasets/downloads/manual/) as:
  images/ISIC_0000000.jpg ...        one image per ISIC id
  metadata/ISIC_0000000.json ...     the archive's JSON record of each image
(the same layout as tfmelanoma's embedded sample, `tfmelanoma/data/sample`).
"""


class IsicArchiveConfig(tfds.core.BuilderConfig):
    """Config with an optional resize at preparation.

    Attributes:
        max_side: shrink images so the long side is at most this; None keeps the original size.
    """

    def __init__(self, *, max_side: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_side = max_side


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for a folder of ISIC Archive images and JSON metadata."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        IsicArchiveConfig(name="original", description="Images at their downloaded size."),
        IsicArchiveConfig(
            name="resized_512", max_side=512, description="Long side shrunk to 512 px."
        ),
        IsicArchiveConfig(
            name="sample",
            description=(
                "The CC0 UDA-1 collection embedded in tfmelanoma (557 images, 128 px long side); "
                "needs no download: the manual directory is ignored."
            ),
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://www.isic-archive.com")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        if self.builder_config.name == "sample":
            from tfmelanoma.data.sample import sample_dir

            manual_dir = sample_dir()
        else:
            manual_dir = dl_manager.manual_dir
        root = manual_files.check_manual_files(
            manual_dir,
            ["images", "metadata"],
            dataset=_NAME,
            instructions=MANUAL_DOWNLOAD_INSTRUCTIONS,
        )
        images = sorted(
            p for p in (root / "images").iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
        )
        if not images:
            raise common.MissingFilesError(
                f"{_NAME}: no .jpg/.png images in {root / 'images'}\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        return {"train": self._generate_examples(images, root / "metadata")}

    def _generate_examples(self, images: list[Path], metadata_dir: Path):
        # Bad files (unreadable image, missing or invalid JSON) raise, or with
        # `skip_bad_files=True` are skipped and counted in info.metadata (generation.BadFilePolicyMixin).
        for path in images:
            try:
                record = _read_metadata(metadata_dir / f"{path.stem}.json")
                image = common.read_image(path, max_side=self.builder_config.max_side)
            except (common.ImageReadError, common.MissingFilesError, ValueError) as e:
                self.handle_bad_file("train", e)
                continue
            yield path.stem, _example(path.stem, record, image)
        self.log_skipped("train")


def _read_metadata(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise common.MissingFilesError(f"{path}: metadata JSON missing for this image") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def _diagnosis(clinical: dict, path_hint: str) -> str:
    diagnosis = clinical.get("diagnosis")
    if diagnosis:
        return diagnosis
    benign_malignant = clinical.get("benign_malignant")
    if benign_malignant in ("benign", "malignant"):
        return f"unknown_{benign_malignant}"
    raise ValueError(f"{path_hint}: neither meta.clinical.diagnosis nor benign_malignant is set")


def _example(image_id: str, record: dict, image: common.DecodedImage) -> dict:
    meta = record.get("meta", {})
    clinical = meta.get("clinical", {}) or {}
    acquisition = meta.get("acquisition", {}) or {}
    image_type = str(acquisition.get("image_type") or "dermoscopic")
    return common.make_example(
        dataset=_NAME,
        image=image,
        image_id=record.get("name", image_id),
        diagnosis=_diagnosis(clinical, f"metadata of {image_id}"),
        patient_id=clinical.get("patient_id") or "",
        lesion_id=clinical.get("lesion_id") or "",
        age=clinical.get("age_approx"),
        sex=clinical.get("sex"),
        anatomic_site=clinical.get("anatom_site_general"),
        image_type="clinical" if "clinical" in image_type else "dermoscopic",
    )
