"""Where segmentation examples come from: a builder's segmentation config, or image + mask folders.

TensorFlow-free. The official datasets are read by their TFDS builders (isic2016, isic2017,
isic2018, ph2: the `segmentation_512` config unless another is named), prepared on first use
from the manual download folder (`data.manual_dir`, `segment train --data-dir`); a user's own
data is a folder of images with a folder of masks (`folder_pairs`). A split is a
`SegmentationSplit`: its source and the row numbers it keeps (sorted, so every pipeline serves
the examples in the source's order); `tfmelanoma.data.segmentation` (tf.data) and
`tfmelanoma.data.segmentation_numpy` (NumPy) turn it into batches.

Items of every source are dicts like a TFDS segmentation example: `image` uint8 (H, W, 3),
`segmentation_mask` uint8 (H, W, 1) 0/255, `image_id`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tfmelanoma.data import masks as mask_files
from tfmelanoma.data.images import open_rgb

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_KEY = "segmentation_mask"
FOLDER = "folder"
BUILDERS = ("isic2016", "isic2017", "isic2018", "ph2")
"""The project's builders with a segmentation config (a `segmentation_mask` feature)."""
DEFAULT_CONFIG = "segmentation_512"


@dataclass(frozen=True)
class Pairs:
    """Matched file lists of a folder of images and a folder of masks."""

    image_ids: list
    image_paths: list
    mask_paths: list

    def __len__(self) -> int:
        return len(self.image_ids)

    def subset(self, rows) -> Pairs:
        rows = [int(r) for r in rows]
        return Pairs(
            [self.image_ids[r] for r in rows],
            [self.image_paths[r] for r in rows],
            [self.mask_paths[r] for r in rows],
        )


def folder_pairs(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    mask_name: str | None = None,
    limit: int | None = None,
) -> Pairs:
    """Pairs every image in `images_dir` with its mask in `masks_dir`, sorted by name.

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
    ids, found_masks, missing = [], [], []
    for image in images:
        candidates = [masks_dir / p.format(id=image.stem) for p in patterns]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            missing.append(f"{image.name} (expected {candidates[0].name})")
        ids.append(image.stem)
        found_masks.append(str(found))
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise FileNotFoundError(f"{len(missing)} image(s) without a mask in {masks_dir}: {shown}")
    for image, mask in zip(images, found_masks, strict=True):  # headers only
        mask_files.check_mask_size(
            mask, mask_files.image_size(mask), image, mask_files.image_size(image)
        )
    return Pairs(ids, [str(p) for p in images], found_masks)


class FileSource(Sequence):
    """Random access to image/mask files: `images.open_rgb` (the pixels of `image_ops.decode_np`,
    errors naming the file) and `masks.read_mask`."""

    def __init__(self, pairs: Pairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        image = np.asarray(open_rgb(self.pairs.image_paths[index]))
        mask = mask_files.read_mask(self.pairs.mask_paths[index]) * np.uint8(255)  # as TFDS
        return {"image": image, MASK_KEY: mask[..., None], "image_id": self.pairs.image_ids[index]}


class Subset(Sequence):
    """The rows `rows` of a random-access source, in that order."""

    def __init__(self, source: Sequence, rows):
        self.source = source
        self.rows = [int(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        return self.source[self.rows[index]]


@dataclass(frozen=True)
class SegmentationSplit:
    """One split's examples: a prepared builder's split or folder pairs, and the rows kept.

    Attributes:
        name: what it is, for logs and data.json ("isic2017/segmentation_512:train").
        rows: sorted row numbers of the source split.
        pairs: the folder pairs (folder input), else None.
        builder: the TFDS builder name ("isic2017/segmentation_512"), else "".
        split: the builder's split.
        data_dir: the TFDS data dir the builder is prepared in.
    """

    name: str
    rows: tuple
    pairs: Pairs | None = None
    builder: str = ""
    split: str = ""
    data_dir: str | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def of_builder(cls, builder, full: str, split: str, rows=None) -> SegmentationSplit:
        """`split` of the prepared TFDS `builder` named `full` (NAME/CONFIG): the rows `rows`,
        default all, read later from the builder's data dir (`access.data_dir_root`)."""
        from tfmelanoma.datasets.access import data_dir_root

        if rows is None:
            rows = range(builder.info.splits[split].num_examples)
        return cls(f"{full}:{split}", tuple(rows), None, full, split, data_dir_root(builder))

    def take(self, rows) -> SegmentationSplit:
        """The same source with other rows (sorted)."""
        return replace(self, rows=tuple(sorted(int(r) for r in rows)))

    def as_data_source(self) -> Sequence[dict]:
        """Random access to the kept examples (NumPy pipeline; ArrayRecord for builders)."""
        if self.pairs is not None:
            return FileSource(self.pairs.subset(self.rows))
        import tensorflow_datasets as tfds

        source = tfds.data_source(
            self.builder, split=self.split, data_dir=self.data_dir, download=False
        )
        return Subset(source, self.rows)


@dataclass
class SegmentationData:
    """The splits of one run: train, validation, and the split evaluated at the end."""

    train: SegmentationSplit
    validation: SegmentationSplit
    test: SegmentationSplit
    summary: dict


def builder_name(name: str) -> str:
    """`isic2017` -> `isic2017/segmentation_512`; NAME/CONFIG stays; a `tfds:` prefix goes."""
    name = name.removeprefix("tfds:")
    return name if "/" in name else f"{name}/{DEFAULT_CONFIG}"


def prepared_builder(name: str, data_dir: str | None, manual_dir: str | None, file_format: str):
    """The prepared TFDS builder of a segmentation source, preparing it from `manual_dir`.

    Raises:
        DatasetNotPreparedError: not prepared and no manual download folder given.
        DatasetError: unknown dataset, the manual folder lacks files (each named), or a format
            the pipeline cannot read.
        ValueError: a config without masks.
    """
    from tfmelanoma.datasets.access import get_builder
    from tfmelanoma.errors import DatasetNotPreparedError

    full = builder_name(name)
    try:
        builder = get_builder(full, data_dir, manual_dir=manual_dir, file_format=file_format)
    except DatasetNotPreparedError as e:
        raise DatasetNotPreparedError(
            f"{e}\nfor segmentation: give the folder with its manual download "
            "(data.manual_dir; `segment train --data-dir`)"
        ) from None
    if MASK_KEY not in builder.info.features:
        raise ValueError(
            f"dataset {full!r} has no {MASK_KEY!r} feature; name a segmentation config "
            f"({name.split('/')[0]}/{DEFAULT_CONFIG})"
        )
    return builder


def _held_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, held-out rows) of n: a seeded `fraction` (at least one) held out, sorted."""
    if n < 2:
        raise ValueError(f"cannot hold out a validation part of {n} example(s)")
    k = min(n - 1, max(1, round(n * fraction)))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


def _first(rows, limit: int):
    return rows[:limit] if limit else rows


def load_segmentation_data(config, *, file_format: str = "tfrecord") -> SegmentationData:
    """The train / validation / test splits a segmentation config names.

    Args:
        config: the run config (`data` section; `split_seed` for a held-out validation part).
        file_format: how builders not prepared yet are prepared ("array_record" for the
            NumPy pipeline).

    Raises:
        FileNotFoundError, DatasetNotPreparedError, ValueError: see `prepared_builder` and
        `folder_pairs`; an empty split, or a `data.test` split the source lacks.
    """
    d = config.data
    source = d.train[0]
    if source == FOLDER:
        pairs = folder_pairs(d.images_dir, d.masks_dir)
        whole = SegmentationSplit(f"folder:{d.images_dir}", tuple(range(len(pairs))), pairs)
        splits = {"train": whole}
    else:
        builder = prepared_builder(source, d.data_dir or None, d.manual_dir or None, file_format)
        full = builder_name(source)
        splits = {s: SegmentationSplit.of_builder(builder, full, s) for s in builder.info.splits}
    if "train" not in splits:
        raise ValueError(f"{source}: no train split (it has {', '.join(splits)})")
    train = splits["train"]
    if d.val_split and d.val_split in splits and d.val_split != "train":
        validation = splits[d.val_split]
    else:
        kept, held = _held_out(len(train), d.val_fraction, config.split_seed)
        train, validation = train.take(kept), train.take(held)
        validation = replace(validation, name=f"{validation.name} (held out {d.val_fraction:g})")
    train = train.take(_first(train.rows, d.limit))
    validation = validation.take(_first(validation.rows, d.val_limit))
    test_name = d.test or ("test" if "test" in splits else "")
    if test_name and test_name not in splits:
        raise ValueError(
            f"data.test={d.test!r}: {source} has no such split (it has {', '.join(splits)}; "
            "'' = its test split, else the validation split)"
        )
    test = splits[test_name] if test_name else validation
    for role, split in (("train", train), ("validation", validation), ("test", test)):
        if len(split) == 0:
            raise ValueError(f"the {role} split of {source} ({split.name}) is empty")
    summary = {
        "task": "segmentation",
        "source": source,
        "splits": {r: s.name for r, s in (("train", train), ("validation", validation),
                                          ("test", test))},
        "sizes": {"train": len(train), "validation": len(validation), "test": len(test)},
    }  # fmt: skip
    return SegmentationData(train, validation, test, summary)
