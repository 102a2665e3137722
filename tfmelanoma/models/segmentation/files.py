"""Image/mask file pairs of the official dataset layouts and of plain folders (no TensorFlow).

Shared by the tf.data pipeline (`data`) and the TF-free NumPy pipeline (`numpy_data`): paths
are listed here and each mask's size is checked against its image's (file headers only, so a
wrong mask is refused before training starts); decoding is `tfmelanoma.data.masks.read_mask`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tfmelanoma.data import masks as mask_files

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Layout:
    """Where a dataset keeps images and masks, per split (`{split}` is the official split word)."""

    images: str
    masks: str
    mask_name: str  # format string with {id}
    splits: dict


LAYOUTS = {
    "isic2017": Layout(
        images="ISIC-2017_{split}_Data",
        masks="ISIC-2017_{split}_Part1_GroundTruth",
        mask_name="{id}_segmentation.png",
        splits={"train": "Training", "validation": "Validation", "test": "Test_v2"},
    ),
    "isic2018": Layout(
        images="ISIC2018_Task1-2_{split}_Input",
        masks="ISIC2018_Task1_{split}_GroundTruth",
        mask_name="{id}_segmentation.png",
        splits={"train": "Training", "validation": "Validation", "test": "Test"},
    ),
}


@dataclass(frozen=True)
class Pairs:
    """Matched file lists of one split."""

    image_ids: list
    image_paths: list
    mask_paths: list

    def __len__(self) -> int:
        return len(self.image_ids)


def find_pairs(
    dataset: str, data_dir: str | os.PathLike, split: str = "train", limit: int | None = None
) -> Pairs:
    """Lists image/mask pairs of a known dataset in its official layout, sorted by image id.

    Args:
        dataset: "isic2017", "isic2018" or "ph2".
        data_dir: the folder holding the official folders (e.g. `../shared/data/isic2017`; for
            PH2 the folder holding `PH2Dataset/`, as the TFDS builder's manual_dir).
        split: "train", "validation" or "test" (PH2 has only "train").
        limit: keep the first `limit` pairs (sorted by id), for smoke runs.

    Raises:
        FileNotFoundError: the split's folder is missing, or an image has no mask (named).
        ValueError: unknown dataset or split.
        tfmelanoma.errors.LabelError: a mask whose size differs from its image's.
    """
    root = Path(data_dir)
    if dataset == "ph2":
        if split != "train":
            raise ValueError(f"PH2 has no official {split!r} split; use split='train'")
        return _ph2_pairs(root, limit)
    if dataset not in LAYOUTS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {[*LAYOUTS, 'ph2']}")
    layout = LAYOUTS[dataset]
    if split not in layout.splits:
        raise ValueError(f"{dataset}: unknown split {split!r}; expected {list(layout.splits)}")
    word = layout.splits[split]
    return folder_pairs(
        root / layout.images.format(split=word),
        root / layout.masks.format(split=word),
        mask_name=layout.mask_name,
        limit=limit,
    )


def folder_pairs(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    mask_name: str | None = None,
    limit: int | None = None,
) -> Pairs:
    """Pairs every image in `images_dir` with its mask in `masks_dir`.

    Args:
        images_dir: folder of images (.jpg/.png/.bmp/.tif); other files (CSV metadata) are ignored.
        masks_dir: folder of masks (0/255, 0/1 or grey; see `tfmelanoma.data.masks`).
        mask_name: mask file name pattern with `{id}` (the image stem); None tries
            `{id}_segmentation.png`, then `{id}.png`.
        limit: keep only the first `limit` images (sorted by name).

    Raises:
        FileNotFoundError: a folder is missing, holds no image, or an image has no mask.
        tfmelanoma.errors.LabelError: a mask whose size differs from its image's.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not folder.is_dir():
            raise FileNotFoundError(f"{what} folder not found: {folder}")
    # ISIC downloads put `ISIC_xxx_superpixels.png` next to the images; they are not lesions.
    images = sorted(
        p
        for p in images_dir.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith("_superpixels")
    )
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images_dir}")
    images = images[:limit] if limit else images
    patterns = [mask_name] if mask_name else ["{id}_segmentation.png", "{id}.png"]
    ids, masks, missing = [], [], []
    for image in images:
        candidates = [masks_dir / p.format(id=image.stem) for p in patterns]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            missing.append(f"{image.name} (expected {candidates[0].name})")
        ids.append(image.stem)
        masks.append(str(found))
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise FileNotFoundError(f"{len(missing)} image(s) without a mask in {masks_dir}: {shown}")
    return _checked(Pairs(ids, [str(p) for p in images], masks))


def _ph2_pairs(root: Path, limit: int | None) -> Pairs:
    # PH2: "PH2 Dataset images/IMD002/IMD002_Dermoscopic_Image/IMD002.bmp" and
    # ".../IMD002_lesion/IMD002_lesion.bmp". `root` is the folder holding `PH2Dataset/`, as for
    # the TFDS builder's manual_dir; `PH2Dataset/` itself and its image folder are accepted too.
    candidates = [root / "PH2Dataset" / "PH2 Dataset images", root / "PH2 Dataset images"]
    base = next((c for c in candidates if c.is_dir()), root)
    cases = sorted(p for p in base.glob("IMD*") if p.is_dir())
    if not cases:
        raise FileNotFoundError(f"no PH2 case folders (IMD*) under {base}")
    cases = cases[:limit] if limit else cases
    ids, images, masks = [], [], []
    for case in cases:
        image = case / f"{case.name}_Dermoscopic_Image" / f"{case.name}.bmp"
        mask = case / f"{case.name}_lesion" / f"{case.name}_lesion.bmp"
        for path in (image, mask):
            if not path.is_file():
                raise FileNotFoundError(f"PH2 case {case.name}: missing {path}")
        ids.append(case.name)
        images.append(str(image))
        masks.append(str(mask))
    return _checked(Pairs(ids, images, masks))


def _checked(pairs: Pairs) -> Pairs:
    """`pairs`, once every mask is known to have its image's size (headers only).

    Raises:
        tfmelanoma.errors.LabelError: a mask of another size, naming both files and sizes.
    """
    for image, mask in zip(pairs.image_paths, pairs.mask_paths, strict=True):
        mask_files.check_mask_size(
            mask, mask_files.image_size(mask), image, mask_files.image_size(image)
        )
    return pairs
