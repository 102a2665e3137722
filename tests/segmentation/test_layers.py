"""AttentionGate, ResidualBlock and ColourSpace: behaviour, config round trip, reference values."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from skimage.color import rgb2lab

from tfmelanoma.models.segmentation import AttentionGate, ColourSpace, ResidualBlock
from tfmelanoma.models.segmentation.colour_space import rgb_to_hsv, rgb_to_lab

RNG = np.random.default_rng(0)


def _roundtrip(layer, inputs):
    """Same outputs after get_config -> from_config and after serialize -> deserialize."""
    expected = np.asarray(layer(inputs))
    clone = layer.__class__.from_config(layer.get_config())
    clone(inputs)  # build
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(inputs)), expected, atol=1e-6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()
    return expected


def test_attention_gate_scales_skip_by_sigmoid_coefficients():
    x = RNG.normal(size=(2, 8, 8, 6)).astype("float32")
    g = RNG.normal(size=(2, 8, 8, 4)).astype("float32")
    gate = AttentionGate(3, name="gate")
    out = _roundtrip(gate, [x, g])
    assert out.shape == x.shape
    ratio = out / x  # = alpha, the same for every channel of a pixel
    assert np.all(ratio > 0) and np.all(ratio < 1)
    np.testing.assert_allclose(ratio, np.repeat(ratio[..., :1], 6, axis=-1), rtol=1e-4)
    # psi is a sigmoid of a 1x1 conv: recompute it from the weights.
    wx, wg, bg, wpsi, bpsi = (np.asarray(w) for w in gate.get_weights())
    q = np.maximum(x @ wx[0, 0] + g @ wg[0, 0] + bg, 0)
    alpha = 1 / (1 + np.exp(-(q @ wpsi[0, 0] + bpsi)))
    np.testing.assert_allclose(out, x * alpha, rtol=1e-4, atol=1e-5)


def test_attention_gate_rejects_mismatched_resolution():
    with pytest.raises(ValueError, match="same height and width"):
        AttentionGate(2)([np.zeros((1, 8, 8, 2), "float32"), np.zeros((1, 4, 4, 2), "float32")])


@pytest.mark.parametrize("channels", [4, 6])
def test_residual_block_shapes_and_shortcut(channels):
    x = RNG.normal(size=(2, 8, 8, channels)).astype("float32")
    block = ResidualBlock(6)
    out = _roundtrip(block, x)
    assert out.shape == (2, 8, 8, 6)
    assert out.min() >= 0  # final ReLU
    assert (block.shortcut_conv is None) == (channels == 6)


def test_lab_matches_scikit_image():
    rgb = RNG.integers(0, 256, size=(4, 5, 3)).astype("float32")
    rgb[0, 0] = [255, 255, 255]
    rgb[0, 1] = [0, 0, 0]
    rgb[0, 2] = [255, 0, 0]
    ours = np.asarray(rgb_to_lab(rgb))
    ref = rgb2lab(rgb / 255.0)  # L in [0, 100], a/b about [-128, 127]
    ref_scaled = np.stack(
        [ref[..., 0] / 100, (ref[..., 1] + 128) / 255, (ref[..., 2] + 128) / 255], -1
    )
    np.testing.assert_allclose(ours, ref_scaled, atol=2e-3)
    np.testing.assert_allclose(ours[0, 0], [1.0, 128 / 255, 128 / 255], atol=2e-3)  # white
    # pure red: L* 53.24, a* 80.09, b* 67.20 (published sRGB/D65 values)
    np.testing.assert_allclose(ours[0, 2], [0.5324, 208.09 / 255, 195.20 / 255], atol=2e-3)


def test_hsv_matches_tensorflow():
    rgb = RNG.integers(0, 256, size=(6, 7, 3)).astype("float32")
    rgb[0, 0] = [200, 10, 100]  # magenta-red: negative raw hue that must wrap
    rgb[0, 1] = [50, 50, 50]  # grey: zero saturation
    expected = tf.image.rgb_to_hsv(rgb / 255.0).numpy()
    np.testing.assert_allclose(np.asarray(rgb_to_hsv(rgb)), expected, atol=1e-5)


@pytest.mark.parametrize("space", ["rgb", "lab", "hsv"])
def test_colour_space_layer(space):
    rgb = RNG.uniform(0, 255, size=(2, 4, 4, 3)).astype("float32")
    out = _roundtrip(ColourSpace(space), rgb)
    assert out.shape == rgb.shape and out.min() >= -1e-6 and out.max() <= 1 + 1e-6


def test_colour_space_rejects_unknown():
    with pytest.raises(ValueError, match="unknown colour space 'xyz'"):
        ColourSpace("xyz")


def test_lab_gradient_is_finite_at_black():
    x = tf.zeros((1, 2, 2, 3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(rgb_to_lab(x))
    assert np.all(np.isfinite(tape.gradient(y, x).numpy()))
