"""Image + mask input pipeline for segmentation (tf.data): official folder layouts, TFDS, augmentation.

Reads the official download layouts in place (ISIC 2017, ISIC 2018 Task 1, PH2) or any folder of
images with a folder of masks, or a TFDS builder with a `segmentation_mask` feature (the
`isic2017` segmentation config). Yields `(image float32 RGB [0, 255] (H, W, 3),
mask float32 {0, 1} (H, W, 1))`, the model contract's input plus a binary target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from tfmelanoma.models.segmentation.colour_space import convert_colour

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
        data_dir: the folder holding the official folders (e.g. `../shared/data/isic2017`).
        split: "train", "validation" or "test" (PH2 has only "train").
        limit: keep the first `limit` pairs (sorted by id), for smoke runs.

    Raises:
        FileNotFoundError: the split's folder is missing, or an image has no mask (named).
        ValueError: unknown dataset or split.
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
        masks_dir: folder of masks (any value > 127 is lesion).
        mask_name: mask file name pattern with `{id}` (the image stem); None tries
            `{id}_segmentation.png`, then `{id}.png`.
        limit: keep only the first `limit` images (sorted by name).

    Raises:
        FileNotFoundError: a folder is missing, holds no image, or an image has no mask.
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
    return Pairs(ids, [str(p) for p in images], masks)


def _ph2_pairs(root: Path, limit: int | None) -> Pairs:
    # PH2: "PH2 Dataset images/IMD002/IMD002_Dermoscopic_Image/IMD002.bmp" and
    # ".../IMD002_lesion/IMD002_lesion.bmp".
    base = root / "PH2 Dataset images" if (root / "PH2 Dataset images").is_dir() else root
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
    return Pairs(ids, images, masks)


def decode_image(path) -> tf.Tensor:
    """Reads any JPEG/PNG/BMP/GIF file as uint8 RGB (H, W, 3)."""
    data = tf.io.read_file(path)
    return tf.ensure_shape(
        tf.io.decode_image(data, channels=3, expand_animations=False), [None, None, 3]
    )


def decode_mask(path) -> tf.Tensor:
    """Reads a mask file as float32 {0, 1} (H, W, 1); values > 127 are lesion."""
    data = tf.io.read_file(path)
    mask = tf.io.decode_image(data, channels=1, expand_animations=False)
    return tf.cast(tf.ensure_shape(mask, [None, None, 1]) > 127, tf.float32)


def resize_pair(image, mask, size: int):
    """Resizes an image (bilinear, float32 [0, 255]) and its mask (nearest) to size x size."""
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    image = tf.clip_by_value(image, 0.0, 255.0)
    mask = tf.image.resize(tf.cast(mask, tf.float32), (size, size), method="nearest")
    return image, mask


def augment_pair(image, mask, seed, size: int | None = None, crop_fraction: float = 0.8):
    """Joint random flips, 90-degree rotation and crop, identical for image and mask.

    The image and mask are stacked into one 4-channel tensor so every geometric op sees the same
    random draw; stateless ops with an explicit seed make the result reproducible.

    Args:
        image: float32 (H, W, 3).
        mask: float32 (H, W, 1).
        seed: int tensor of shape (2,).
        size: output size (defaults to the input height); crops are resized back to it.
        crop_fraction: the crop side as a fraction of the input side, drawn in [crop_fraction, 1].

    Returns:
        `(image, mask)`, the mask still binary.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    stacked = tf.concat([tf.cast(image, tf.float32), tf.cast(mask, tf.float32)], axis=-1)
    stacked = tf.image.stateless_random_flip_left_right(stacked, seeds[0])
    stacked = tf.image.stateless_random_flip_up_down(stacked, seeds[1])
    k = tf.random.stateless_uniform([], seeds[2], minval=0, maxval=4, dtype=tf.int32)
    stacked = tf.image.rot90(stacked, k)
    height, width = tf.shape(stacked)[0], tf.shape(stacked)[1]
    out = size or image.shape[0] or tf.shape(image)[0]
    fraction = tf.random.stateless_uniform([], seeds[3], minval=crop_fraction, maxval=1.0)
    side = tf.cast(tf.cast(tf.minimum(height, width), tf.float32) * fraction, tf.int32)
    stacked = tf.image.stateless_random_crop(stacked, [side, side, 4], seeds[3])
    image = tf.image.resize(stacked[..., :3], (out, out))
    mask = tf.image.resize(stacked[..., 3:], (out, out), method="nearest")
    return image, mask


def make_dataset(
    pairs: Pairs,
    image_size: int,
    batch_size: int,
    *,
    augment: bool = False,
    shuffle: bool = False,
    repeat: bool = False,
    colour_space: str | None = None,
    seed: int = 0,
    cache: bool = True,
) -> tf.data.Dataset:
    """(image, mask) batches from matched files.

    Args:
        pairs: from `find_pairs` / `folder_pairs`.
        image_size: square size images and masks are resized to.
        batch_size: batch size.
        augment: joint flips / rot90 / crops (`augment_pair`).
        shuffle: shuffle file order each epoch.
        repeat: repeat forever (pair with `steps_per_epoch`).
        colour_space: None keeps RGB [0, 255] (what every registry model expects: they convert
            inside); "rgb" / "lab" / "hsv" convert here to [0, 1] for models that do not.
        seed: seed of the shuffle and the augmentation draws.
        cache: keep decoded, resized pairs in memory (small sizes make this cheap).
    """
    ds = tf.data.Dataset.from_tensor_slices((pairs.image_paths, pairs.mask_paths))
    ds = ds.map(
        lambda i, m: resize_pair(decode_image(i), decode_mask(m), image_size),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _finish(ds, len(pairs), batch_size, augment, shuffle, repeat, colour_space, seed, cache)


def tfds_dataset(
    name: str,
    split: str,
    image_size: int,
    batch_size: int,
    data_dir: str | None = None,
    **kwargs,
) -> tf.data.Dataset:
    """(image, mask) batches from a prepared TFDS builder with a `segmentation_mask` feature.

    Args:
        name: e.g. "isic2017/segmentation"; the project's builders are imported so TFDS knows them.
        split: TFDS split name.
        image_size, batch_size: as in `make_dataset`.
        data_dir: TFDS data dir (None: the TFDS default).
        **kwargs: `augment`, `shuffle`, `repeat`, `colour_space`, `seed`, `cache` as in `make_dataset`.
    """
    import tensorflow_datasets as tfds  # noqa: PLC0415  (heavy; only needed on this path)

    _import_builder(name.split("/")[0])
    builder = tfds.builder(name, data_dir=data_dir)
    if "segmentation_mask" not in builder.info.features:
        raise ValueError(f"TFDS dataset {name!r} has no 'segmentation_mask' feature")
    ds = builder.as_dataset(split=split)
    n = builder.info.splits[split].num_examples
    ds = ds.map(
        lambda ex: resize_pair(
            ex["image"], tf.cast(ex["segmentation_mask"] > 127, tf.float32), image_size
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _finish(ds, n, batch_size, **kwargs)


def _import_builder(module: str) -> None:
    try:
        __import__(f"tfds_builders.{module}")
    except ImportError:
        pass  # a builder TFDS already knows (or a typo that tfds.builder reports clearly)


def _finish(
    ds,
    n,
    batch_size,
    augment=False,
    shuffle=False,
    repeat=False,
    colour_space=None,
    seed=0,
    cache=True,
):
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(min(n, 2048), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if augment:
        # One seed per element from a seeded counter: reproducible, different every epoch.
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda pair, s: augment_pair(pair[0], pair[1], s),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if colour_space is not None:
        ds = ds.map(lambda i, m: (convert_colour(i * 1.0, colour_space), m))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
