"""RGB -> CIELAB / HSV conversion with `keras.ops`, usable in a model and inside `tf.data`.

Hand-written because neither Keras nor TensorFlow ships an RGB->CIELAB op (TF has
`tf.image.rgb_to_hsv`, but it cannot live in a backend-agnostic layer or a TF.js graph). The
formulas are the standard sRGB (D65) ones; tests compare against scikit-image and TF.
"""

from __future__ import annotations

import keras
from keras import ops

COLOUR_SPACES = ("rgb", "lab", "hsv")

# sRGB (linear) -> CIE XYZ, D65 white point (IEC 61966-2-1), rows X, Y, Z.
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)
_DELTA = 6.0 / 29.0


def rgb_to_lab(rgb):
    """sRGB in [0, 255] -> CIELAB scaled to [0, 1] per channel (AER-Net's best input).

    `L* / 100`, `(a* + 128) / 255`, `(b* + 128) / 255`, from
    `L* = 116 f(Y/Yn) - 16`, `a* = 500 (f(X/Xn) - f(Y/Yn))`, `b* = 200 (f(Y/Yn) - f(Z/Zn))`,
    `f(t) = t^(1/3)` above `(6/29)^3`, else `t / (3 (6/29)^2) + 4/29`.

    Args:
        rgb: float tensor (..., 3) in [0, 255].

    Returns:
        Tensor of the same shape, channels (L, a, b) scaled to about [0, 1].
    """
    c = ops.clip(ops.cast(rgb, "float32") / 255.0, 0.0, 1.0)
    linear = ops.where(
        c <= 0.04045, c / 12.92, ops.power((ops.maximum(c, 0.04045) + 0.055) / 1.055, 2.4)
    )
    xyz = ops.matmul(linear, ops.transpose(ops.convert_to_tensor(_RGB_TO_XYZ, "float32")))
    t = xyz / ops.convert_to_tensor(_D65_WHITE, "float32")
    # maximum() keeps the unused branch of where() finite so gradients stay NaN-free.
    cube_root = ops.power(ops.maximum(t, _DELTA**3), 1.0 / 3.0)
    f = ops.where(t > _DELTA**3, cube_root, t / (3.0 * _DELTA**2) + 4.0 / 29.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    lightness = (116.0 * fy - 16.0) / 100.0
    a = (500.0 * (fx - fy) + 128.0) / 255.0
    b = (200.0 * (fy - fz) + 128.0) / 255.0
    return ops.stack([lightness, a, b], axis=-1)


def rgb_to_hsv(rgb):
    """sRGB in [0, 255] -> HSV in [0, 1] (hue as a fraction of the circle, like TF's op).

    Args:
        rgb: float tensor (..., 3) in [0, 255].

    Returns:
        Tensor of the same shape, channels (H, S, V) in [0, 1].
    """
    c = ops.clip(ops.cast(rgb, "float32") / 255.0, 0.0, 1.0)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    value = ops.max(c, axis=-1)
    delta = value - ops.min(c, axis=-1)
    saturation = ops.where(value > 0, delta / ops.where(value > 0, value, 1.0), 0.0)
    safe = ops.where(delta > 0, delta, 1.0)
    hue = ops.where(
        value == r,
        (g - b) / safe,
        ops.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe),
    )
    hue = ops.where(delta > 0, hue / 6.0, 0.0)
    hue = hue - ops.floor(hue)  # wrap negative hues (red-magenta) into [0, 1)
    return ops.stack([hue, saturation, value], axis=-1)


def convert_colour(rgb, space: str):
    """RGB [0, 255] -> `space` scaled to [0, 1]: "rgb" (/255), "lab" or "hsv".

    Raises:
        ValueError: unknown colour space.
    """
    space = check_colour_space(space)
    if space == "lab":
        return rgb_to_lab(rgb)
    if space == "hsv":
        return rgb_to_hsv(rgb)
    return ops.cast(rgb, "float32") / 255.0


def check_colour_space(space: str) -> str:
    """Lower-cases and validates a colour-space name; raises ValueError naming the choices."""
    name = str(space).lower()
    if name == "cielab":
        name = "lab"
    if name not in COLOUR_SPACES:
        raise ValueError(f"unknown colour space {space!r}; expected one of {COLOUR_SPACES}")
    return name


@keras.saving.register_keras_serializable(package="tfmelanoma")
class ColourSpace(keras.layers.Layer):
    """Converts RGB pixels in [0, 255] to RGB, CIELAB or HSV scaled to [0, 1] inside a model.

    Keeping the conversion in the model keeps the project contract (every model eats RGB in
    [0, 255]) while letting a segmentation model see CIELAB, as AER-Net does.

    Args:
        space: "rgb", "lab" (alias "cielab") or "hsv".
        **kwargs: standard `keras.layers.Layer` arguments.
    """

    def __init__(self, space: str = "rgb", **kwargs):
        super().__init__(**kwargs)
        self.space = check_colour_space(space)

    def call(self, inputs):
        return convert_colour(inputs, self.space)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"space": self.space})
        return config
