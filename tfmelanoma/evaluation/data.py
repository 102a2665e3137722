"""Inputs for the evaluation CLI: folders of images, prediction over example-dict datasets.

Two kinds of dataset are predicted over, with the same pixels (`tfmelanoma.data.image_ops`):
a `tf.data.Dataset` of example dicts (TensorFlow backend: `SplitView.as_tf_dataset`), decoded and
resized by the TF ops; and a random-access sequence of example dicts (any backend, no TensorFlow:
`SplitView.as_data_source`, `ImageFolderSource`), decoded and resized by their NumPy twins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tfmelanoma.data.image_ops import decode_np, resize_np
from tfmelanoma.data.images import open_rgb, unreadable_files_error
from tfmelanoma.errors import ImageReadError
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


class ImageFolderSource(Sequence):
    """`root/<class folder>/<image files>` as a random-access sequence of example dicts.

    Item *i* is `{"image": uint8 (H, W, 3), label_key: class index, "image_id": "<folder>/<stem>"}`
    (`label_key` "label" for the binary classes, "harmonised_diagnosis" for the nine),
    in sorted folder / file order, like the TFDS splits. Each file is decoded once, when its item
    is read, by `tfmelanoma.data.images.open_rgb` (the pixel contract's decoder, EXIF orientation
    applied; errors name the file). Used on every Keras backend.
    """

    def __init__(
        self,
        root,
        class_names: Sequence[str],
        class_map: dict[str, str] | None = None,
        label_key: str = "label",
    ):
        """Lists the files (nothing is decoded yet).

        Args:
            root: folder with one sub-folder per class.
            class_names: the model's class names in output order.
            class_map: folder name -> class name, for folders not named after a class
                (e.g. {"benign": "non_melanoma", "malignant": "melanoma"}).
            label_key: the key the class index is stored under (what the evaluator reads).

        Raises:
            ValueError: missing folder, a sub-folder that maps to no class, or no images at all.
        """
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"--images-dir {root}: not a folder (expected <dir>/<class>/<images>)")
        class_map = class_map or {}
        self.label_key = label_key
        self.paths: list[Path] = []
        self.labels: list[int] = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            name = class_map.get(folder.name, folder.name)
            if name not in class_names:
                raise ValueError(
                    f"{folder}: folder {folder.name!r} is not one of the model's classes "
                    f"{list(class_names)}; rename it or pass --class-map {folder.name}=<class>"
                )
            files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            self.paths += files
            self.labels += [list(class_names).index(name)] * len(files)
        if not self.paths:
            raise ValueError(
                f"{root}: no images found (expected {'/'.join(IMAGE_SUFFIXES)} files in class "
                "sub-folders)"
            )
        # <folder>/<file stem>: file names repeat across class folders in some datasets (Kaggle).
        self.image_ids = [f"{p.parent.name}/{p.stem}" for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        """The example of file `i`. Raises ImageReadError naming the file when it is bad."""
        image = np.asarray(open_rgb(self.paths[i]), dtype=np.uint8)
        return {"image": image, self.label_key: self.labels[i], "image_id": self.image_ids[i]}


def images_dir_dataset(
    root,
    class_names: Sequence[str],
    class_map: dict[str, str] | None = None,
    label_key: str = "label",
):
    """(`ImageFolderSource` of `root`, number of images); see `ImageFolderSource`.

    Raises:
        ValueError: missing folder, a sub-folder that maps to no class, or no images at all.
    """
    source = ImageFolderSource(root, class_names, class_map, label_key)
    return source, len(source)


def _tf_batches(ds, image_size: int, batch_size: int, label_key: str, limit: int | None):
    import tensorflow as tf

    # The training decoder and resize: the same pixels as training.
    from tfmelanoma.data.image_ops import decode_tf, resize_tf

    def prep(ex):
        image = ex["image"]
        if image.dtype == tf.string:  # prepared records read with SkipDecoding
            image = decode_tf(image, exif=False)
        return resize_tf(image, image_size), tf.cast(ex[label_key], tf.int64), ex["image_id"]

    if limit:
        ds = ds.take(limit)
    ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)
    for images, y, ids in ds:
        yield images.numpy(), y.numpy(), [_text(i) for i in ids.numpy()]


def _numpy_batches(source, image_size: int, batch_size: int, label_key: str, limit: int | None):
    """Batches of a random-access source, decoded and resized by the NumPy twins in threads
    (Pillow and NumPy release the GIL). Unreadable files are collected, and all of them named in
    one ImageReadError once the other files are read: each file is decoded once."""
    n = min(len(source), limit) if limit else len(source)
    bad: list[str] = []

    def load(i: int):
        try:
            ex = source[i]
        except ImageReadError as e:
            bad.append(str(e))
            return None
        image = ex["image"]
        if not isinstance(image, np.ndarray) or image.ndim != 3:  # encoded bytes
            image = decode_np(image)
        return resize_np(image, image_size), int(ex[label_key]), _text(ex["image_id"])

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for start in range(0, n, batch_size):
            rows = [r for r in pool.map(load, range(start, min(start + batch_size, n))) if r]
            if rows and not bad:
                images, y, ids = zip(*rows, strict=True)
                yield np.stack(images), np.asarray(y, np.int64), list(ids)
    if bad:
        raise unreadable_files_error(bad)


def _text(value) -> str:
    if isinstance(value, np.ndarray):
        value = value.item()
    return value.decode() if isinstance(value, bytes) else str(value)


def iter_batches(
    ds, image_size: int, batch_size: int, label_key: str = "label", limit: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray, list[str]]]:
    """(images float32 (B, size, size, 3) in [0, 255], labels (B,), ids) of a dataset, in order.

    Args:
        ds: a `tf.data.Dataset` of example dicts, or a random-access sequence of them
            (`SplitView.as_data_source()`, `ImageFolderSource`), which needs no TensorFlow.
        image_size, batch_size, label_key: as in `predict_dataset`.
        limit: only the first `limit` examples.
    """
    if isinstance(ds, Sequence):
        return _numpy_batches(ds, image_size, batch_size, label_key, limit)
    return _tf_batches(ds, image_size, batch_size, label_key, limit)


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
        ds: dicts with `image`, `image_id` and `label_key`: a `tf.data.Dataset`, or a
            random-access sequence (no TensorFlow needed; see `iter_batches`).
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
        ImageReadError: unreadable image files (an `ImageFolderSource`), all of them named.
    """
    from tqdm import tqdm

    if limit:
        total = min(total or limit, limit)
    labels, probs, ids = [], [], []
    steps = None if total is None else -(-total // batch_size)
    for images, y, image_ids in tqdm(
        iter_batches(ds, image_size, batch_size, label_key, limit),
        total=steps,
        desc=f"predict {what}",
        unit="batch",
        leave=False,
        disable=not sys.stderr.isatty(),  # in a log file a bar is a line of escape codes
    ):
        probs.append(np.asarray(predictor(images), dtype=np.float64))
        labels.append(y)
        ids += image_ids
    if not probs:
        raise ValueError(f"the {what} is empty: nothing to evaluate")
    return np.concatenate(labels), np.concatenate(probs), ids


def gather_images(ds, wanted: Sequence[str], image_size: int, label_key: str = "label"):
    """The resized images (float32 [0, 255]) of the given ids, in the order of `wanted`."""
    want = set(wanted)
    found = {}
    for images, _, image_ids in iter_batches(ds, image_size, 64, label_key):
        for img, key in zip(images, image_ids, strict=True):
            if key in want:
                found[key] = img
        if len(found) == len(want):
            break
    return (
        np.stack([found[i] for i in wanted]) if wanted else np.zeros((0, image_size, image_size, 3))
    )
