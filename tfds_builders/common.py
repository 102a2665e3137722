"""Schema and helpers shared by every builder in `tfds_builders`.

Every classification example carries the same keys (see `classification_features`), so datasets can
be merged, de-duplicated and split by patient without per-dataset code. Nothing here imports
TensorFlow: builders stay loadable from projects that read through `tfds.data_source`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass

import imagehash
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from tfmelanoma import labels
from tfmelanoma.data import images, masks
from tfmelanoma.errors import DatasetError, ImageReadError
from tfmelanoma.logging_utils import get_logger

UNKNOWN_AGE = -1
IMAGE_TYPES = ("dermoscopic", "clinical")

logger = get_logger(__name__)


class MissingFilesError(DatasetError, FileNotFoundError):
    """One or more files of a manual download are missing; the message lists all of them."""


@dataclass(frozen=True)
class DecodedImage:
    """An image read from disk, possibly resized, with the content hashes of the original.

    Attributes:
        array: uint8 RGB array (H, W, 3), after the optional resize.
        sha256: SHA-256 of the decoded original RGB pixels (and shape): equal for byte-identical
            pixels whatever the container format.
        phash: 64-bit perceptual hash (DCT, `imagehash.phash`) of the original as 16 hex digits;
            survives resizing and re-encoding, compared by Hamming distance.
        original_size: (height, width) before the resize.
    """

    array: np.ndarray
    sha256: str
    phash: str
    original_size: tuple[int, int]


def classification_features(*, with_mask: bool = False) -> tfds.features.FeaturesDict:
    """The common example schema; segmentation configs add `segmentation_mask`."""
    features = {
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
        "image_id": tfds.features.Text(),
        "source": tfds.features.Text(),
        "label": tfds.features.ClassLabel(names=list(labels.BINARY_CLASSES)),
        "diagnosis": tfds.features.Text(),
        "harmonised_diagnosis": tfds.features.ClassLabel(names=list(labels.HARMONISED_CLASSES)),
        "patient_id": tfds.features.Text(),
        "lesion_id": tfds.features.Text(),
        "age": tfds.features.Scalar(dtype=np.int32),
        "sex": tfds.features.Text(),
        "anatomic_site": tfds.features.Text(),
        "image_type": tfds.features.Text(),
        "sha256": tfds.features.Text(),
        "phash": tfds.features.Text(),
    }
    if with_mask:
        features["segmentation_mask"] = tfds.features.Image(
            shape=(None, None, 1), encoding_format="png"
        )
    return tfds.features.FeaturesDict(features)


def lesion_info(builder, homepage: str, *, features=None) -> tfds.core.DatasetInfo:
    """The `_info` of every builder here.

    Features are `classification_features()` (with `segmentation_mask` in a segmentation config)
    unless given; the supervised keys are (image, mask) or (image, label) to match; the metadata
    dict is where the bad-file policy records what it skipped (`BadFilePolicyMixin`).
    """
    segmentation = getattr(builder.builder_config, "segmentation", False)
    return builder.dataset_info_from_configs(
        features=features or classification_features(with_mask=segmentation),
        supervised_keys=("image", "segmentation_mask" if segmentation else "label"),
        homepage=homepage,
        metadata=tfds.core.MetadataDict(),
    )


def image_hashes(rgb: Image.Image) -> tuple[str, str]:
    """Returns (sha256, phash) of a decoded RGB image."""
    array = np.asarray(rgb, dtype=np.uint8)
    digest = hashlib.sha256(f"{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest(), str(imagehash.phash(rgb))


def _resize_long_side(img: Image.Image, max_side: int) -> Image.Image:
    h, w = img.height, img.width
    if max(h, w) <= max_side:
        return img
    scale = max_side / max(h, w)
    return img.resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS
    )


def read_image(path: os.PathLike | str, *, max_side: int | None = None) -> DecodedImage:
    """Decodes an image file to RGB, hashes it, and optionally shrinks its long side.

    Grayscale, palette, CMYK and alpha images are converted to RGB; EXIF orientation is applied
    (phone photos). Hashes are always of the original size, so resized and original configs hash
    the same image identically.

    Args:
        path: image file (JPEG, PNG, BMP, ... anything Pillow decodes).
        max_side: shrink so that the long side is at most this many pixels; None keeps the size.

    Raises:
        ImageReadError: the file is missing, truncated or not an image, naming the file.
    """
    img = images.open_rgb(path)
    sha, phash = image_hashes(img)
    original_size = (img.height, img.width)
    if max_side is not None:
        img = _resize_long_side(img, max_side)
    return DecodedImage(np.asarray(img, dtype=np.uint8), sha, phash, original_size)


def read_mask(
    path: os.PathLike | str, image_path: os.PathLike | str, image: DecodedImage
) -> np.ndarray:
    """A lesion mask as uint8 (H, W, 1) 0/255, at the size `image` was resized to.

    Decoding, binarising (0/255, 0/1 and grey masks) and the size check are
    `tfmelanoma.data.masks.read_mask`'s; the mask must have the original image's size and is
    then nearest-resized along with the image.

    Args:
        path: the mask file.
        image_path: its image, named in the size-mismatch message.
        image: the decoded image (`original_size` is checked, `array`'s size is the target).

    Raises:
        ImageReadError: the mask is missing or unreadable, naming the file.
        tfmelanoma.errors.LabelError: the mask's size differs from the image's (both named).
    """
    try:
        mask = masks.read_mask(path, image_path=image_path, size=image.original_size)
    except masks.MaskReadError as e:
        raise ImageReadError(str(e)) from None
    height, width = image.array.shape[:2]
    if mask.shape != (height, width):
        mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))
    return (mask * 255).astype(np.uint8)[..., None]


def make_example(
    *,
    dataset: str,
    image: DecodedImage,
    image_id: str,
    diagnosis: str,
    patient_id: str = "",
    lesion_id: str = "",
    age: float | int | None = None,
    sex: str | None = None,
    anatomic_site: str | None = None,
    image_type: str = "dermoscopic",
    mask: np.ndarray | None = None,
) -> dict:
    """Builds one example of the common schema; labels come from the label-mapping table.

    Raises:
        tfmelanoma.labels.UnmappedDiagnosisError: `diagnosis` has no row for `dataset`.
        ValueError: `image_type` is not one of `IMAGE_TYPES`.
    """
    mapping = labels.map_diagnosis(dataset, diagnosis)
    if image_type not in IMAGE_TYPES:
        raise ValueError(f"{dataset}/{image_id}: image_type {image_type!r} not in {IMAGE_TYPES}")
    example = {
        "image": image.array,
        "image_id": image_id,
        "source": dataset,
        "label": mapping.binary,
        "diagnosis": diagnosis,
        "harmonised_diagnosis": mapping.harmonised,
        "patient_id": patient_id or "",
        "lesion_id": lesion_id or "",
        "age": parse_age(age),
        "sex": normalise_text(sex),
        "anatomic_site": normalise_text(anatomic_site),
        "image_type": image_type,
        "sha256": image.sha256,
        "phash": image.phash,
    }
    if mask is not None:
        example["segmentation_mask"] = mask
    return example


def example_from_files(
    image_path: os.PathLike | str,
    mask_path: os.PathLike | str | None = None,
    *,
    max_side: int | None = None,
    **fields,
) -> dict:
    """Reads an image (and its lesion mask) and builds its example.

    Args:
        image_path: the image file (`read_image`).
        mask_path: its mask (`read_mask`, checked against the image), or None.
        max_side: shrink to this long side at preparation (the mask follows).
        **fields: the other `make_example` arguments (dataset, image_id, diagnosis, ...).

    Raises:
        ImageReadError: an unreadable image or mask, naming the file.
    """
    image = read_image(image_path, max_side=max_side)
    mask = None if mask_path is None else read_mask(mask_path, image_path, image)
    return make_example(image=image, mask=mask, **fields)


def parse_age(value: float | int | str | None) -> int:
    """Age in years as int; `UNKNOWN_AGE` (-1) for empty, NaN or unparsable values."""
    if value is None:
        return UNKNOWN_AGE
    try:
        age = float(value)
    except (TypeError, ValueError):
        return UNKNOWN_AGE
    return UNKNOWN_AGE if np.isnan(age) or age < 0 else int(round(age))


def normalise_text(value: object) -> str:
    """Lower-cased, stripped text; "" for None/NaN/"unknown"."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip().lower()
    return "" if text in {"nan", "unknown", "none", "null"} else text


class MissingColumnError(ValueError):
    """A CSV lacks a column the builder needs; the message names the file and the columns."""


@dataclasses.dataclass(eq=False)
class LesionConfig(tfds.core.BuilderConfig):
    """A builder variant: image size at preparation and whether masks are included.

    Attributes:
        max_side: shrink every image so its long side is at most this many pixels (masks follow
            with nearest-neighbour resizing); None keeps the original size.
        segmentation: add `segmentation_mask` (only for datasets that have lesion masks).
        image_type: `dermoscopic` or `clinical`, for datasets that ship both (e.g. derm7pt).
    """

    max_side: int | None = None
    segmentation: bool = False
    image_type: str = "dermoscopic"


def lesion_configs(classification: str, segmentation: str) -> list[LesionConfig]:
    """The four variants of a dataset with lesion masks: `classification_512`,
    `classification_original`, `segmentation_512`, `segmentation_original`.

    Args:
        classification: what the classification configs hold, e.g. "Part 3 images".
        segmentation: what the segmentation configs hold, e.g. "Part 1 images and masks".
    """
    long_side = "resized to a 512 px long side (masks nearest-neighbour)"
    return [
        LesionConfig(
            name="classification_512", description=f"{classification}, {long_side}.", max_side=512
        ),
        LesionConfig(
            name="classification_original", description=f"{classification}, original size."
        ),
        LesionConfig(
            name="segmentation_512",
            description=f"{segmentation}, {long_side}.",
            max_side=512,
            segmentation=True,
        ),
        LesionConfig(
            name="segmentation_original",
            description=f"{segmentation}, original size.",
            segmentation=True,
        ),
    ]


class UnlabeledImageError(ValueError):
    """Image files that the label file does not mention; the message names them."""
