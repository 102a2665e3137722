"""Mask prediction for folders of images and lesion cropping for the classifier.

No TensorFlow: `tfmelanoma.data.images.open_rgb` opens the files, `image_ops.resize_antialiased_np`
resizes exactly as the segmentation pipelines do and Pillow writes the masks, so
`segment predict` runs on every Keras backend.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from PIL import Image

from tfmelanoma.data.image_ops import resize_antialiased_np
from tfmelanoma.data.images import open_rgb
from tfmelanoma.data.segmentation_sources import IMAGE_SUFFIXES


def model_input_size(model: keras.Model) -> tuple[int, int]:
    """The (H, W) a saved segmentation model was built for."""
    height, width = model.input_shape[1:3]
    if height is None or width is None:
        raise ValueError(f"model {model.name!r} has no fixed input size {model.input_shape}")
    return int(height), int(width)


def predict_probs(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """Probability mask at the image's own resolution.

    Args:
        model: a segmentation model (RGB [0, 255] in, (H, W, 1) sigmoid out).
        image: uint8 or float RGB (H, W, 3).

    Returns:
        float32 (H, W) probabilities, resized back (bilinear) to the image size.
    """
    x = resize_antialiased_np(image, model_input_size(model))[None]  # clipped to [0, 255]
    probs = np.asarray(model.predict_on_batch(x), dtype=np.float32)[0]
    # Back to the image size; upsampling, where the antialiased filter equals plain bilinear.
    return resize_antialiased_np(probs, image.shape[:2])[..., 0]


def lesion_box(mask: np.ndarray, margin: float = 0.1) -> tuple[int, int, int, int] | None:
    """Bounding box (top, left, bottom, right) of the mask's foreground, grown by `margin`.

    Args:
        mask: (H, W) boolean/binary mask.
        margin: fraction of the box side added on every side (clipped to the image).

    Returns:
        The box, or None when the mask is empty.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    dy, dx = int(round((bottom - top) * margin)), int(round((right - left) * margin))
    h, w = mask.shape
    return max(0, top - dy), max(0, left - dx), min(h, bottom + dy), min(w, right + dx)


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted; raises FileNotFoundError naming the folder if none."""
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def predict_folder(
    model: keras.Model,
    images_dir: Path,
    out_dir: Path,
    crop_dir: Path | None = None,
    threshold: float = 0.5,
    margin: float = 0.1,
) -> list[dict]:
    """Writes `<stem>_segmentation.png` (0/255, original size) for every image of a folder.

    Args:
        model: segmentation model.
        images_dir: folder of images.
        out_dir: where masks go (created).
        crop_dir: if given, also writes `<stem>.png` crops of the lesion's bounding box (the
            whole image when nothing is segmented) for the classifier.
        threshold: binarisation threshold.
        margin: crop margin as a fraction of the box side.

    Returns:
        One dict per image: id, mask path, lesion fraction, crop box.
    """
    from tqdm import tqdm  # noqa: PLC0415

    out_dir.mkdir(parents=True, exist_ok=True)
    if crop_dir is not None:
        crop_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in tqdm(list_images(images_dir), desc="predict", unit="image"):
        image = np.asarray(open_rgb(path))
        mask = predict_probs(model, image) >= threshold
        mask_path = out_dir / f"{path.stem}_segmentation.png"
        Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
        box = lesion_box(mask, margin)
        if crop_dir is not None:
            top, left, bottom, right = box or (0, 0, *image.shape[:2])
            crop = image[top:bottom, left:right]
            Image.fromarray(crop).save(crop_dir / f"{path.stem}.png")
        rows.append(
            {
                "image_id": path.stem,
                "mask": str(mask_path),
                "lesion_fraction": float(mask.mean()),
                "box": "" if box is None else " ".join(map(str, box)),
            }
        )
    return rows
