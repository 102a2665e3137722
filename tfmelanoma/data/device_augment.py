"""Augment on the accelerator: every `AugmentConfig` option inside the compiled training step.

The loader (`tfmelanoma.data.grain_pipeline`) sends uint8 images at the stored size plus, per
example, a row of augmentation parameters drawn with NumPy from (run seed, epoch, step)
(`sample_params`); `DeviceAugment`, the first layer of a training-time wrapper model
(`training_model`), applies them with `keras.ops` only, in float32, on whatever device the step
runs on. Randomness is drawn on the CPU (a few floats per image) and pixels are computed on the
device, so:

- a batch's augmentation is a pure function of (seed, epoch, step): a resumed run sees the
  uninterrupted run's pixels, with no random-generator state to save;
- the same parameters give the same pixels on every backend (only `keras.ops` arithmetic and
  `take`; TensorFlow and JAX agree within float rounding, `tests/data/test_device_augment.py`);
- the saved model stays clean: `best.keras` is the wrapped model itself (`inner_model`), which
  export to TF.js and evaluation load as before; only the epoch checkpoints (resume) hold the
  wrapper.

Geometry: random resized crop, zoom, rotation (any angle) and flips are composed into one
mapping from output pixels to stored pixels and sampled once, bilinearly, with a half-sample
symmetric (reflected) border as tf.data's rotation; the crop box lies in the stored image, which
may be larger than the model input (`data.cache_size`) so crops keep detail. Unlike the tf.data
and NumPy paths, which rotate the already cropped image, the reflected border here starts at the
stored image's edge (real pixels beyond the crop first): the same distribution of crops, angles
and flips, a slightly different border (`tests/data/test_augment_parity.py` compares the
statistics per option). Colour: brightness, contrast, saturation and hue as the NumPy path
(saturation and hue in HSV), then cutout.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from tfmelanoma.config import AugmentConfig

NUM_PARAMS = 13
"""Per example: crop box (y0, x0, h, w as fractions of the stored image), angle (radians),
hflip, vflip (0/1), brightness delta, contrast factor, saturation factor, hue shift (turns),
cutout centre row and column (output pixels; far outside = no cutout)."""
_OFF = -1e6


def identity_params(n: int) -> np.ndarray:
    """Parameters that leave images unchanged (bar the resize to the model's size)."""
    params = np.zeros((n, NUM_PARAMS), np.float32)
    params[:, 2:4] = 1.0
    params[:, 8:10] = 1.0
    params[:, 11:13] = _OFF
    return params


def sample_params(
    rng: np.random.Generator, n: int, config: AugmentConfig, image_size: int
) -> np.ndarray:
    """Draws `n` rows of augmentation parameters, with the distributions of the NumPy path.

    Args:
        rng: e.g. `np.random.default_rng([seed, epoch, step])`.
        n: examples.
        config: which options, how strong.
        image_size: the model's input side (cutout centres are in its pixels).

    Returns:
        float32 (n, NUM_PARAMS).
    """
    params = identity_params(n)
    if not config.enabled:
        return params
    y0, x0 = np.zeros(n), np.zeros(n)
    h, w = np.ones(n), np.ones(n)
    if config.crop_scale < 1:  # area in [crop_scale, 1], aspect ratio log-uniform in [3/4, 4/3]
        area = rng.uniform(config.crop_scale, 1.0, n)
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3), n))
        h = np.clip(np.sqrt(area / ratio), 0.0, 1.0)
        w = np.clip(np.sqrt(area * ratio), 0.0, 1.0)
        y0, x0 = rng.uniform(0, 1, n) * (1 - h), rng.uniform(0, 1, n) * (1 - w)
    if config.zoom > 0:  # zoom in around the box's centre by up to 1 / (1 - zoom)
        keep = 1.0 - rng.uniform(0.0, config.zoom, n)
        y0, x0 = y0 + h * (1 - keep) / 2, x0 + w * (1 - keep) / 2
        h, w = h * keep, w * keep
    params[:, 0], params[:, 1], params[:, 2], params[:, 3] = y0, x0, h, w
    if config.rotation > 0:
        params[:, 4] = rng.uniform(-config.rotation, config.rotation, n) * 2 * math.pi
    if config.hflip:
        params[:, 5] = rng.random(n) < 0.5
    if config.vflip:
        params[:, 6] = rng.random(n) < 0.5
    if config.brightness > 0:
        params[:, 7] = rng.uniform(-config.brightness, config.brightness, n)
    if config.contrast > 0:
        params[:, 8] = rng.uniform(1 - config.contrast, 1 + config.contrast, n)
    if config.saturation > 0:
        params[:, 9] = rng.uniform(1 - config.saturation, 1 + config.saturation, n)
    if config.hue > 0:
        params[:, 10] = rng.uniform(-config.hue, config.hue, n)
    if config.cutout > 0:
        params[:, 11:13] = rng.integers(0, image_size, (n, 2))
    return params


def _reflect(coord, size: int):
    """Half-sample symmetric extension (d c b a | a b c d | d c b a) of pixel-centre coords."""
    period = 2.0 * size
    t = ops.mod(coord + 0.5, period)
    t = ops.where(t >= size, period - t, t)
    return ops.clip(t - 0.5, 0.0, size - 1.0)


def sample_bilinear(images, ys, xs):
    """Bilinear samples of (B, S, S, C) images at pixel-centre coords (B, T, T) each, float32.

    Gathers from the images as given (uint8: a quarter of the bytes to move; 1.2-2x faster on
    XLA's CPU) and converts the gathered corners."""
    b, s, c = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[3]
    flat = ops.reshape(images, (-1, c))
    y0, x0 = ops.floor(ys), ops.floor(xs)
    fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
    y0, x0 = ops.cast(y0, "int32"), ops.cast(x0, "int32")
    y1, x1 = ops.minimum(y0 + 1, s - 1), ops.minimum(x0 + 1, s - 1)
    base = ops.reshape(ops.arange(b, dtype="int32") * (s * s), (-1, 1, 1))

    def at(y, x):
        return ops.cast(ops.take(flat, base + y * s + x, axis=0), "float32")

    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


def warp(images, params, out_size: int, *, nearest: bool = False):
    """The geometric part of the parameters: crop box, angle and flips, composed into one map
    from output to stored pixels, sampled once (reflected border).

    Args:
        images: (B, S, S, C) with a static S.
        params: (B, NUM_PARAMS).
        out_size: output side.
        nearest: sample the nearest pixel (masks: stay binary) instead of bilinearly.

    Returns:
        float32 (B, out_size, out_size, C).
    """
    size = images.shape[1] or ops.shape(images)[1]
    params = ops.cast(params, "float32")
    grid = (ops.arange(out_size, dtype="float32") + 0.5) / out_size
    p = [params[:, k][:, None, None] for k in range(7)]
    v, u = grid[None, :, None], grid[None, None, :]
    v = ops.where(p[6] > 0.5, 1.0 - v, v)  # the flips come last, so are undone first
    u = ops.where(p[5] > 0.5, 1.0 - u, u)
    cos, sin = ops.cos(p[4]), ops.sin(p[4])
    ys = 0.5 + cos * (v - 0.5) - sin * (u - 0.5)  # output -> input, about the centre
    xs = 0.5 + sin * (v - 0.5) + cos * (u - 0.5)
    ys = _reflect((p[0] + ys * p[2]) * size - 0.5, size)
    xs = _reflect((p[1] + xs * p[3]) * size - 0.5, size)
    if nearest:  # TensorFlow's half-pixel nearest rule at scale 1: the pixel the centre is in
        ys, xs = ops.floor(ys + 0.5), ops.floor(xs + 0.5)
    return sample_bilinear(images, ys, xs)


@keras.saving.register_keras_serializable(package="tfmelanoma")
class DeviceAugment(keras.layers.Layer):
    """Applies per-example augmentation parameters to uint8 images in the training step.

    Args:
        image_size: output side (the model's input).
        cutout: side of the cutout square as a fraction of `image_size` (0 = none).
        hsv: apply the saturation and hue parameters (an HSV round trip; off when both are 0).

    Call args:
        images: uint8 (or float) (B, S, S, 3) in [0, 255], S >= 1 (any stored size).
        params: float32 (B, NUM_PARAMS) (`sample_params`).
        training: augment; otherwise only resize to `image_size` (identity when S equals it).

    Returns:
        float32 (B, image_size, image_size, 3) in [0, 255].
    """

    def __init__(self, image_size: int, cutout: float = 0.0, hsv: bool = True, **kwargs):
        kwargs.setdefault("dtype", "float32")  # pixels in float32 under any mixed policy
        super().__init__(**kwargs)
        self.image_size = image_size
        self.cutout = cutout
        self.hsv = hsv

    def call(self, images, params, training=None):
        size = images.shape[1] or ops.shape(images)[1]
        if not training:
            if size == self.image_size:
                return ops.cast(images, "float32")
            params = ops.convert_to_tensor(identity_params(1)) + ops.zeros_like(params)
        x = warp(images, params, self.image_size)
        p = [ops.cast(params, "float32")[:, k][:, None, None] for k in range(NUM_PARAMS)]
        if not training:
            return x
        x = x / 255.0 + p[7][..., None]
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        x = (x - mean) * p[8][..., None] + mean
        if self.hsv:
            hsv = ops.image.rgb_to_hsv(ops.clip(x, 0.0, 1.0), data_format="channels_last")
            hue = ops.mod(hsv[..., 0] + p[10], 1.0)
            sat = ops.clip(hsv[..., 1] * p[9], 0.0, 1.0)
            x = ops.image.hsv_to_rgb(
                ops.stack([hue, sat, hsv[..., 2]], axis=-1), data_format="channels_last"
            )
        x = ops.clip(x, 0.0, 1.0) * 255.0
        if self.cutout > 0:
            t = self.image_size
            half = float(int(t * self.cutout) // 2)
            rows = ops.arange(t, dtype="float32")
            inside = (ops.abs(rows[None, :, None] - p[11]) <= half) & (
                ops.abs(rows[None, None, :] - p[12]) <= half
            )
            x = ops.where(inside[..., None], 0.0, x)
        return x

    def compute_output_shape(self, images_shape, params_shape=None):
        return (images_shape[0], self.image_size, self.image_size, images_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, cutout=self.cutout, hsv=self.hsv)
        return config


def augment_layer(config: AugmentConfig, image_size: int) -> DeviceAugment:
    """The layer for an `AugmentConfig` (HSV skipped when saturation and hue are off)."""
    return DeviceAugment(
        image_size,
        cutout=config.cutout if config.enabled else 0.0,
        hsv=config.enabled and (config.saturation > 0 or config.hue > 0),
        name="device_augment",
    )


IMAGE_KEY, PARAMS_KEY = "image", "augment_params"


def training_model(model: keras.Model, config: AugmentConfig, image_size: int) -> keras.Model:
    """`model` behind a `DeviceAugment` layer: what `fit` trains; `inner_model` gets it back.

    Inputs: {"image": uint8 (B, S, S, 3), "augment_params": (B, NUM_PARAMS)}.
    """
    images = keras.Input((None, None, 3), dtype="uint8", name=IMAGE_KEY)
    params = keras.Input((NUM_PARAMS,), dtype="float32", name=PARAMS_KEY)
    x = augment_layer(config, image_size)(images, params)
    return keras.Model({IMAGE_KEY: images, PARAMS_KEY: params}, model(x), name="augmented")


def inner_model(model: keras.Model) -> keras.Model:
    """The model inside a `training_model` or `AugmentedSegmenter` wrapper, or a wrapper that
    names what it wraps as `inner` (`training.distill.Distiller`); `model` itself when it is
    not one."""
    inner = getattr(model, "inner", None)
    if isinstance(inner, keras.Model):
        return inner_model(inner)
    if isinstance(model, AugmentedSegmenter):
        return model.segmenter
    if not any(isinstance(layer, DeviceAugment) for layer in model.layers):
        return model
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def sample_pair_params(rng: np.random.Generator, n: int, crop_fraction: float = 0.8) -> np.ndarray:
    """Segmentation's joint augmentation as parameters, with `segmentation_numpy.augment_pair`'s
    distribution: flips, a quarter turn k in 0-3, a square crop of side in [crop_fraction, 1]."""
    params = identity_params(n)
    params[:, 5] = rng.random(n) < 0.5
    params[:, 6] = rng.random(n) < 0.5
    params[:, 4] = rng.integers(0, 4, n) * (math.pi / 2)
    side = rng.uniform(crop_fraction, 1.0, n)
    params[:, 0], params[:, 1] = (
        rng.uniform(0, 1, n) * (1 - side),
        rng.uniform(0, 1, n) * (1 - side),
    )
    params[:, 2] = params[:, 3] = side
    return params


@keras.saving.register_keras_serializable(package="tfmelanoma")
class AugmentedSegmenter(keras.Model):
    """Segmentation's training-time wrapper: image and mask warped alike inside the step.

    `fit` passes targets straight to the loss, so a wrapper layer cannot reach the mask; here
    `compute_loss` and `compute_metrics` (which every backend's train and test steps call) warp
    the mask with the batch's parameters (nearest: it stays binary) before the loss and metrics
    see it. Validation batches carry identity parameters.

    Args:
        segmenter: the model (`inner_model` gives it back; it alone is saved as best.keras).
        image_size: the model's input side.
    """

    def __init__(self, segmenter: keras.Model, image_size: int, **kwargs):
        super().__init__(**kwargs)
        self.segmenter = segmenter
        self.image_size = image_size
        self.built = segmenter.built  # no weights of its own

    def build(self, input_shape=None):
        self.built = True  # the segmenter is built; nothing of its own

    def call(self, inputs, training=None):
        images = warp(inputs[IMAGE_KEY], inputs[PARAMS_KEY], self.image_size)
        return self.segmenter(images, training=training)

    def _masks(self, x, y):
        return warp(y, x[PARAMS_KEY], self.image_size, nearest=True)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(x, self._masks(x, y), y_pred, sample_weight, training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, self._masks(x, y), y_pred, sample_weight)

    def get_config(self):
        return {
            "segmenter": keras.saving.serialize_keras_object(self.segmenter),
            "image_size": self.image_size,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        segmenter = keras.saving.deserialize_keras_object(config.pop("segmenter"))
        return cls(segmenter, **config)
