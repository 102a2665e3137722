"""Stateless image augmentations for tf.data.

Every op takes a float32 RGB image in [0, 255] of shape (H, W, 3) and a seed tensor of shape [2],
and returns an image of the same shape and range. Stateless ops make a run reproducible for a
seed and let an interrupted run resume with the same augmentations (the seed of an example is
derived from the run seed and the example's position in the stream, see `pipeline`).
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfmelanoma.config import AugmentConfig


def random_resized_crop(image: tf.Tensor, seed: tf.Tensor, min_area: float) -> tf.Tensor:
    """Crops a random box of area in [min_area, 1] and aspect ratio in [3/4, 4/3], resized back."""
    size = tf.shape(image)[:2]
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.concat([size, [3]], 0),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(min_area, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, box_size)
    return tf.image.resize(crop, size, method="bilinear")


def random_zoom(image: tf.Tensor, seed: tf.Tensor, max_zoom: float) -> tf.Tensor:
    """Zooms in by a random factor in [1, 1 / (1 - max_zoom)] around the centre."""
    size = tf.shape(image)[:2]
    keep = 1.0 - tf.random.stateless_uniform([], seed, 0.0, max_zoom)
    crop = _central_fraction(image, keep)
    return tf.image.resize(crop, size, method="bilinear")


def _central_fraction(image: tf.Tensor, fraction: tf.Tensor) -> tf.Tensor:
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    crop = tf.maximum(tf.cast(tf.round(size * fraction), tf.int32), 1)
    offset = (tf.shape(image)[:2] - crop) // 2
    return tf.slice(image, tf.concat([offset, [0]], 0), tf.concat([crop, [3]], 0))


def random_rotation(image: tf.Tensor, seed: tf.Tensor, max_turns: float) -> tf.Tensor:
    """Rotates by a random angle in ±max_turns·360°, filling with the reflected image."""
    angle = tf.random.stateless_uniform([], seed, -max_turns, max_turns) * 2.0 * math.pi
    h = tf.cast(tf.shape(image)[0], tf.float32)
    w = tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Projective transform mapping output to input coordinates, rotating about the centre.
    cx, cy = (w - 1) / 2, (h - 1) / 2
    transform = tf.stack(
        [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0]
    )
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    return out[0]


def random_flips(image: tf.Tensor, seed: tf.Tensor, horizontal: bool, vertical: bool) -> tf.Tensor:
    """Random horizontal and/or vertical flips (dermoscopy has no canonical orientation)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    if horizontal:
        image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    if vertical:
        image = tf.image.stateless_random_flip_up_down(image, seeds[1])
    return image


def colour_jitter(
    image: tf.Tensor,
    seed: tf.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
) -> tf.Tensor:
    """Random brightness (additive, fraction of 255), contrast, saturation and hue shifts."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    x = image / 255.0
    if brightness > 0:
        x = tf.image.stateless_random_brightness(x, brightness, seeds[0])
    if contrast > 0:
        x = tf.image.stateless_random_contrast(x, 1 - contrast, 1 + contrast, seeds[1])
    if saturation > 0:
        x = tf.image.stateless_random_saturation(x, 1 - saturation, 1 + saturation, seeds[2])
    if hue > 0:
        x = tf.image.stateless_random_hue(x, hue, seeds[3])
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def cutout(image: tf.Tensor, seed: tf.Tensor, fraction: float) -> tf.Tensor:
    """Erases (to 0) a square of side `fraction`·min(H, W) at a random centre."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.cast(tf.cast(tf.minimum(h, w), tf.float32) * fraction, tf.int32)
    centre = tf.random.stateless_uniform([2], seed, 0.0, 1.0) * tf.cast(
        tf.stack([h, w]), tf.float32
    )
    cy, cx = tf.cast(centre[0], tf.int32), tf.cast(centre[1], tf.int32)
    rows = tf.range(h)[:, None]
    cols = tf.range(w)[None, :]
    inside = (tf.abs(rows - cy) <= side // 2) & (tf.abs(cols - cx) <= side // 2)
    return tf.where(inside[..., None], tf.zeros_like(image), image)


def _beta(n, seed, alpha: float) -> tf.Tensor:
    """n draws of Beta(alpha, alpha), as the ratio of two stateless Gamma draws."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    ga = tf.random.stateless_gamma([n], seeds[0], alpha=alpha)
    gb = tf.random.stateless_gamma([n], seeds[1], alpha=alpha)
    return ga / tf.maximum(ga + gb, 1e-12)


def _cutmix_boxes(images: tf.Tensor, lam: tf.Tensor, seed: tf.Tensor):
    """CutMix boxes of area (1 - lam) H W at uniform centres, clipped to the image.

    Returns:
        (mask (N, H, W, 1), True inside the box; lam recomputed from the clipped box's area).
    """
    n, h, w = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    side = tf.sqrt(1.0 - lam)
    centre = tf.random.stateless_uniform([n, 2], seed, 0.0, 1.0) * tf.stack([hf, wf])
    top = tf.clip_by_value(centre[:, 0] - side * hf / 2, 0.0, hf)
    bottom = tf.clip_by_value(centre[:, 0] + side * hf / 2, 0.0, hf)
    left = tf.clip_by_value(centre[:, 1] - side * wf / 2, 0.0, wf)
    right = tf.clip_by_value(centre[:, 1] + side * wf / 2, 0.0, wf)
    top, bottom, left, right = (tf.round(v) for v in (top, bottom, left, right))
    rows = tf.range(hf)[None, :, None]
    cols = tf.range(wf)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < bottom[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < right[:, None, None])
    )
    area = (bottom - top) * (right - left)
    return inside[..., None], 1.0 - area / (hf * wf)


def mix(batch: tuple, seed: tf.Tensor, mixup: float = 0.0, cutmix: float = 0.0) -> tuple:
    """Mixup or CutMix over a batch; example i is combined with example i - 1 (the batch rolled
    by one; the stream is shuffled already), with lam_i ~ Beta(alpha, alpha) per example.

    - mixup (Zhang et al. 2018): the image becomes lam_i * image i + (1 - lam_i) * image i - 1.
    - CutMix (Yun et al. 2019): a box of area (1 - lam_i) of image i - 1 is pasted into image i,
      lam_i then recomputed from the box as clipped to the image.

    Targets and sample weights (`batch[1:]`, whatever their shapes) are mixed with the same lam_i.
    With both alphas > 0 each batch takes one of the two with even odds (timm's switch).

    Why by hand: `keras.layers.MixUp` and `CutMix` draw from a stateful seed generator (a resumed
    run would not replay its batches) and leave sample weights out.
    """
    images = batch[0]
    n = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 4)
    partner = tf.roll(images, shift=1, axis=0)
    lams, mixed = [], []
    if mixup > 0:
        lam = _beta(n, seeds[0], mixup)
        w = tf.reshape(tf.cast(lam, images.dtype), [-1, 1, 1, 1])
        lams.append(lam)
        mixed.append(w * images + (1 - w) * partner)
    if cutmix > 0:
        inside, lam = _cutmix_boxes(images, _beta(n, seeds[1], cutmix), seeds[2])
        lams.append(lam)
        mixed.append(tf.where(inside, partner, images))
    if not lams:
        return batch
    lam, images = lams[0], mixed[0]
    if len(lams) == 2:
        use_cutmix = tf.random.stateless_uniform([], seeds[3]) < 0.5
        lam = tf.where(use_cutmix, lams[1], lams[0])
        images = tf.where(use_cutmix, mixed[1], mixed[0])

    def blend(x):
        shape = tf.concat([[n], tf.ones([tf.rank(x) - 1], tf.int32)], 0)
        w = tf.reshape(tf.cast(lam, x.dtype), shape)
        return w * x + (1 - w) * tf.roll(x, shift=1, axis=0)

    return (images, *(blend(x) for x in batch[1:]))


def augment(image: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """Applies every enabled op of `config` in a fixed order, each with its own seed."""
    if not config.enabled:
        return image
    seeds = tf.random.experimental.stateless_split(seed, 6)
    if config.crop_scale < 1:
        image = random_resized_crop(image, seeds[0], config.crop_scale)
    if config.zoom > 0:
        image = random_zoom(image, seeds[1], config.zoom)
    if config.rotation > 0:
        image = random_rotation(image, seeds[2], config.rotation)
    image = random_flips(image, seeds[3], config.hflip, config.vflip)
    if max(config.brightness, config.contrast, config.saturation, config.hue) > 0:
        image = colour_jitter(
            image, seeds[4], config.brightness, config.contrast, config.saturation, config.hue
        )
    if config.cutout > 0:
        image = cutout(image, seeds[5], config.cutout)
    return tf.clip_by_value(image, 0.0, 255.0)
