"""TTA, ensembles, MC dropout and Grad-CAM on small Keras models built here."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmelanoma.evaluation import ensemble, gradcam, tta

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 255, (4, 24, 24, 3)).astype("float32")


def _cnn(k: int = 2, dropout: float = 0.0, bn: bool = False, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(x)
    if bn:
        x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="drop")(x)
    out = keras.layers.Dense(k, activation="softmax" if k > 1 else "sigmoid", name="probs")(x)
    return keras.Model(inp, out)


# ----------------------------------------------------------------------------------------- TTA


def test_tta_views_are_zoomed_corner_crops_and_mirrors():
    views = tta.tta_views(IMAGES)
    assert len(views) == 8 and all(v.shape == IMAGES.shape for v in views)
    zoomed = tf.image.resize(IMAGES, (25, 25), method="bilinear").numpy()  # 24 * 1.05 = 25.2
    # TTA resizes with image_ops.resize_np on every backend: resize_tf's pixels within 1e-3.
    np.testing.assert_allclose(views[0], zoomed[:, :24, :24], atol=1e-3)  # top-left
    np.testing.assert_allclose(views[6], zoomed[:, 1:, 1:], atol=1e-3)  # bottom-right
    np.testing.assert_array_equal(views[1], views[0][:, :, ::-1])  # mirror
    assert len(tta.tta_views(IMAGES, tta.TTAConfig(flip=False, corners=False))) == 1


def test_tta_weights_plain_against_augmented_mean():
    # A predictor whose output depends on the pixels, so every view predicts differently.
    def predictor(x):
        p = x[:, :4, :4].mean(axis=(1, 2, 3)) / 255.0
        return np.stack([1 - p, p], axis=1)

    cfg = tta.TTAConfig(beta=0.4)
    got = tta.tta_predict(predictor, IMAGES, cfg)
    views = tta.tta_views(IMAGES, cfg)
    expected = 0.4 * predictor(IMAGES) + 0.6 * np.mean([predictor(v) for v in views], axis=0)
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(got.sum(1), 1.0)
    assert not np.allclose(got, predictor(IMAGES))
    np.testing.assert_allclose(
        tta.tta_predict(predictor, IMAGES, tta.TTAConfig(beta=1.0)), predictor(IMAGES)
    )


def test_tta_on_keras_model_and_bad_config():
    model = _cnn()
    p = tta.tta_predict(model, IMAGES, batch_size=3)
    assert p.shape == (4, 2) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="beta must be in"):
        tta.TTAConfig(beta=1.4)


# ------------------------------------------------------------------------------------ ensembles


def test_combine_probs_hand_cases():
    a = np.array([[0.9, 0.1], [0.4, 0.6]])
    b = np.array([[0.6, 0.4], [0.2, 0.8]])
    c = np.array([0.7, 0.3])  # sigmoid P(melanoma) form: columns (0.3, 0.7), (0.7, 0.3)
    np.testing.assert_allclose(ensemble.combine_probs([a, b]), [[0.75, 0.25], [0.3, 0.7]])
    np.testing.assert_allclose(
        ensemble.combine_probs([a, b], "weighted", [3, 1]), [[0.825, 0.175], [0.35, 0.65]]
    )
    np.testing.assert_allclose(
        ensemble.combine_probs([a, b, c], "vote"), [[2 / 3, 1 / 3], [1 / 3, 2 / 3]]
    )
    with pytest.raises(ValueError, match="non-negative weights"):
        ensemble.combine_probs([a, b], "weighted", [1, -1])
    with pytest.raises(ValueError, match="unknown ensemble method"):
        ensemble.combine_probs([a], "median")


def test_sample_uncertainty_decomposition():
    agree = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])  # both models unsure: aleatoric
    disagree = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # both confident, opposite: epistemic
    u = ensemble.sample_uncertainty(agree)
    assert u["entropy"][0] == pytest.approx(1) and u["mutual_information"][0] == pytest.approx(0)
    u = ensemble.sample_uncertainty(disagree)
    assert u["entropy"][0] == pytest.approx(1) and u["expected_entropy"][0] == pytest.approx(0)
    assert u["mutual_information"][0] == pytest.approx(1)


def test_ensemble_of_keras_models():
    models = [_cnn(seed=s) for s in range(3)]
    singles = [m(IMAGES).numpy() for m in models]
    np.testing.assert_allclose(
        ensemble.ensemble_predict(models, IMAGES), np.mean(singles, 0), atol=1e-6
    )
    u = ensemble.deep_ensemble_uncertainty(models, IMAGES)
    assert u["entropy"].shape == (4,) and np.all(u["mutual_information"] >= 0)


def test_mc_dropout_samples_differ_and_batchnorm_is_untouched():
    model = _cnn(dropout=0.5, bn=True)
    bn = model.get_layer("bn")
    before = [w.numpy().copy() for w in bn.weights]
    out = ensemble.mc_dropout_predict(model, IMAGES, n_samples=6, seed=1)
    assert out["samples"].shape == (6, 4, 2)
    assert np.ptp(out["samples"][:, 0, 1]) > 0  # dropout is active
    for w, b in zip(bn.weights, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), b)  # moving statistics not updated
    assert bn.trainable
    again = ensemble.mc_dropout_predict(model, IMAGES, n_samples=6, seed=1)
    np.testing.assert_allclose(again["samples"], out["samples"])  # seeded
    with pytest.raises(ValueError, match="no Dropout layer"):
        ensemble.mc_dropout_predict(_cnn(), IMAGES)


# ------------------------------------------------------------------------------------- Grad-CAM


def _expected_gradcam(model, images, k):
    """Independent Grad-CAM for conv -> GAP -> Dense(softmax): closed-form gradient.

    d log p_c / dA_ij = (W_c - sum_k p_k W_k) / (H W), so the channel weights are
    W_c - E_p[W] (the 1 / (H W) factor disappears in the per-image normalisation).
    """
    acts = keras.Model(model.input, model.get_layer("last_conv").output)(images).numpy()
    probs = model(images).numpy()
    w = model.get_layer("probs").kernel.numpy()  # (C, K)
    weights = w[:, k].T - probs @ w.T  # (B, C)
    cam = np.maximum(np.einsum("bhwc,bc->bhw", acts, weights), 0)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)


@pytest.mark.parametrize("nested", [False, True])
def test_gradcam_matches_closed_form(nested):
    model = _cnn(k=3)
    explained = model
    if nested:  # the conv layer inside a sub-model, as with Keras Applications backbones
        inp = keras.Input((24, 24, 3))
        explained = keras.Model(inp, model(inp))
    res = gradcam.grad_cam(explained, IMAGES, "last_conv", class_index=2)
    np.testing.assert_allclose(res["heatmaps"], _expected_gradcam(model, IMAGES, 2), atol=1e-5)
    assert list(res["class_index"]) == [2] * 4
    pred = gradcam.grad_cam(explained, IMAGES, "last_conv")
    assert list(pred["class_index"]) == list(model(IMAGES).numpy().argmax(1))
    assert "call" not in model.get_layer("last_conv").__dict__  # hook removed


def test_gradcam_plus_plus_and_sigmoid_model(tmp_path):
    model = _cnn(k=1)
    res = gradcam.grad_cam(model, IMAGES, "last_conv", plus=True)
    h = res["heatmaps"]
    assert h.shape == (4, 24, 24) and np.all(np.isfinite(h)) and h.min() >= 0 and h.max() <= 1
    p = model(IMAGES).numpy()[:, 0]
    np.testing.assert_allclose(res["probs"], np.c_[1 - p, p], atol=1e-6)  # sigmoid -> 2 columns
    two = {k: v[:2] for k, v in res.items()}
    paths = gradcam.save_overlays(
        IMAGES, two, tmp_path, ["a/1", "b"], ["non_melanoma", "melanoma"], [0, 1]
    )
    assert [p.name for p in paths] == ["gradcam_a_1.png", "gradcam_b.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_gradcam_bad_layer_and_worst_cases():
    model = _cnn()
    with pytest.raises(ValueError, match="no layer named 'nope'.*conv1"):
        gradcam.grad_cam(model, IMAGES, "nope")
    with pytest.raises(ValueError, match=r"needs \(B, H, W, C\)"):
        gradcam.grad_cam(model, IMAGES, "gap")
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert list(gradcam.worst_cases([1, 0, 0, 0], probs, 2)) == [0, 1]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["meshnet", "vgg11", "mobilenet_v2", "efficientnet_b0"])
def test_gradcam_on_registry_models_by_last_conv_layer(name):
    """One model per family kind: flat small CNNs and nested Keras Applications backbones."""
    from tfmelanoma.models import create_model

    model = create_model(name, input_shape=(64, 64, 3))
    layer = gradcam.resolve_layer_name(model, model_name=name)
    images = RNG.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    res = gradcam.grad_cam(model, images, layer, plus=name == "meshnet")
    h = res["heatmaps"]
    assert h.shape == (2, 64, 64) and np.all(np.isfinite(h))
    assert h.max() == pytest.approx(1.0)  # a non-trivial map, scaled to [0, 1]
