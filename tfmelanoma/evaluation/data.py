"""Inputs for the evaluation CLI: folders of images, prediction over example-dict datasets."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfmelanoma.data.images import check_images
from tfmelanoma.evaluation.inference import Predictor
from tfmelanoma.logging_utils import get_logger

log = get_logger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def parse_class_map(text: str | None) -> dict[str, str]:
    """`"benign=non_melanoma,malignant=melanoma"` -> {folder: class name}."""
    out = {}
    for item in filter(None, (t.strip() for t in (text or "").split(","))):
        folder, sep, name = item.partition("=")
        if not sep or not folder or not name:
            raise ValueError(f"--class-map item {item!r}: expected folder=class_name")
        out[folder.strip()] = name.strip()
    return out


def images_dir_dataset(root, class_names: Sequence[str], class_map: dict[str, str] | None = None):
    """A `tf.data.Dataset` of example dicts from `root/<class folder>/<image files>`.

    Each element has `image` (uint8 RGB, decoded), `label` (index in `class_names`) and
    `image_id` (`<folder>/<file name without suffix>`), in sorted folder / file order, like the TFDS splits.

    Args:
        root: folder with one sub-folder per class.
        class_names: the model's class names in output order.
        class_map: folder name -> class name, for folders not named after a class
            (e.g. {"benign": "non_melanoma", "malignant": "melanoma"}).

    Returns:
        (dataset, number of images).

    Raises:
        ValueError: missing folder, a sub-folder that maps to no class, or no images at all.
        ImageReadError: unreadable files (all of them listed).
    """
    import tensorflow as tf

    from tfmelanoma.data.image_ops import decode_tf

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--images-dir {root}: not a folder (expected <dir>/<class>/<images>)")
    class_map = class_map or {}
    paths, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = class_map.get(folder.name, folder.name)
        if name not in class_names:
            raise ValueError(
                f"{folder}: folder {folder.name!r} is not one of the model's classes "
                f"{list(class_names)}; rename it or pass --class-map {folder.name}=<class>"
            )
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        paths += [str(f) for f in files]
        labels += [list(class_names).index(name)] * len(files)
    if not paths:
        raise ValueError(
            f"{root}: no images found (expected {'/'.join(IMAGE_SUFFIXES)} files in class sub-folders)"
        )
    # Every file decoded once before anything runs: all bad files in one message, each named
    # (TensorFlow's decode error inside tf.data names none, and stops at the first).
    check_images(paths)
    # <folder>/<file stem>: file names repeat across class folders in some datasets (Kaggle).
    ids = [f"{Path(p).parent.name}/{Path(p).stem}" for p in paths]

    def load(path, label, image_id):
        # The training decoder (accurate IDCT): the same pixels as training and the browser.
        image = decode_tf(tf.io.read_file(path))
        return {"image": image, "label": label, "image_id": image_id}

    ds = tf.data.Dataset.from_tensor_slices((paths, np.asarray(labels, np.int64), ids))
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE), len(paths)


def _batches(ds, image_size: int, batch_size: int, label_key: str):
    import tensorflow as tf

    # The training decoder and resize: the same pixels as training.
    from tfmelanoma.data.image_ops import decode_tf, resize_tf

    def prep(ex):
        image = ex["image"]
        if image.dtype == tf.string:  # datasets read with SkipDecoding
            image = decode_tf(image)
        return resize_tf(image, image_size), tf.cast(ex[label_key], tf.int64), ex["image_id"]

    return ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)


def predict_dataset(
    predictor: Predictor,
    ds,
    *,
    image_size: int,
    batch_size: int = 32,
    label_key: str = "label",
    limit: int | None = None,
    what: str = "test split",
    total: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Runs `predictor` over a dataset of example dicts, in order.

    Args:
        predictor: image batch -> probabilities (model, TTA or ensemble).
        ds: `tf.data.Dataset` of dicts with `image`, `image_id` and `label_key`.
        image_size: square size images are resized to (the model's input size).
        batch_size: images per batch.
        label_key: "label" (binary) or "harmonised_diagnosis".
        limit: evaluate only the first `limit` examples (smoke runs).
        what: name of the split for error messages.
        total: number of examples, for the progress bar.

    Returns:
        (labels (N,), probabilities (N, K), image ids).

    Raises:
        ValueError: the dataset is empty.
    """
    from tqdm import tqdm

    if limit:
        ds = ds.take(limit)
        total = min(total or limit, limit)
    labels, probs, ids = [], [], []
    steps = None if total is None else -(-total // batch_size)
    for images, y, image_ids in tqdm(
        _batches(ds, image_size, batch_size, label_key),
        total=steps,
        desc=f"predict {what}",
        unit="batch",
        leave=False,
        disable=not sys.stderr.isatty(),  # in a log file a bar is a line of escape codes
    ):
        probs.append(np.asarray(predictor(images.numpy()), dtype=np.float64))
        labels.append(y.numpy())
        ids += [i.decode() if isinstance(i, bytes) else str(i) for i in image_ids.numpy()]
    if not probs:
        raise ValueError(f"the {what} is empty: nothing to evaluate")
    return np.concatenate(labels), np.concatenate(probs), ids


def gather_images(ds, wanted: Sequence[str], image_size: int, label_key: str = "label"):
    """The resized images (float32 [0, 255]) of the given ids, in the order of `wanted`."""
    want = set(wanted)
    found = {}
    for images, _, image_ids in _batches(ds, image_size, 64, label_key):
        for img, i in zip(images.numpy(), image_ids.numpy(), strict=True):
            key = i.decode() if isinstance(i, bytes) else str(i)
            if key in want:
                found[key] = img
        if len(found) == len(want):
            break
    return (
        np.stack([found[i] for i in wanted]) if wanted else np.zeros((0, image_size, image_size, 3))
    )
