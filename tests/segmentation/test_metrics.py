"""Metrics and losses against hand-computed cases, scikit-learn and segmentation_models."""

import os

import keras
import numpy as np
import pytest
from sklearn.metrics import f1_score, jaccard_score

from tfmelanoma.evaluation import segmentation as metrics
from tfmelanoma.models.segmentation import losses

# 2 images of 2x3 pixels.
TRUTH = np.array([[[1, 1, 0], [0, 0, 0]], [[1, 1, 1], [1, 0, 0]]], "float32")[..., None]
PROBS = np.array(
    [[[0.9, 0.2, 0.7], [0.1, 0.0, 0.0]], [[0.6, 0.8, 0.4], [0.5, 0.3, 0.0]]], "float32"
)[..., None]
# Thresholded at 0.5: image 0 pred [1,0,1 / 0,0,0] -> TP 1, FP 1, FN 1 -> J 1/3, D 2/4
# image 1 pred [1,1,0 / 1,0,0] -> TP 3, FP 0, FN 1 -> J 3/4, D 6/7


def test_thresholded_per_image_by_hand():
    np.testing.assert_allclose(metrics.jaccard_per_image(TRUTH, PROBS), [1 / 3, 3 / 4])
    np.testing.assert_allclose(metrics.dice_per_image(TRUTH, PROBS), [1 / 2, 6 / 7])


def test_dataset_level_by_hand():
    # summed: TP 4, FP 1, FN 2
    assert metrics.jaccard_dataset(TRUTH, PROBS) == pytest.approx(4 / 7)
    assert metrics.dice_dataset(TRUTH, PROBS) == pytest.approx(8 / 11)


def test_soft_by_hand():
    # image 0: TP .9+.2=1.1, FP .7+.1=.8, FN .1+.8=.9 ; image 1: TP .6+.8+.4+.5=2.3, FP .3, FN .4+.2+.6+.5=1.7
    np.testing.assert_allclose(
        metrics.jaccard_per_image(TRUTH, PROBS, None), [1.1 / 2.8, 2.3 / 4.3], rtol=1e-6
    )
    np.testing.assert_allclose(
        metrics.dice_per_image(TRUTH, PROBS, None), [2.2 / 3.9, 4.6 / 6.6], rtol=1e-6
    )


def test_isic2018_thresholded_jaccard():
    assert metrics.thresholded_jaccard([0.9, 0.64, 0.65, 0.2]) == pytest.approx((0.9 + 0.65) / 4)
    assert metrics.thresholded_jaccard([1 / 3, 3 / 4]) == pytest.approx(3 / 8)
    with pytest.raises(ValueError):
        metrics.thresholded_jaccard([])


def test_empty_truth_and_prediction_is_perfect():
    empty = np.zeros((1, 4, 4, 1))
    assert metrics.jaccard_per_image(empty, empty)[0] == 1.0
    assert metrics.dice_per_image(empty, empty + 0.2)[0] == 1.0
    assert metrics.jaccard_per_image(empty, empty + 0.9)[0] == 0.0


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="mask shapes differ"):
        metrics.dice_per_image(TRUTH, PROBS[:, :1])


def test_against_scikit_learn_on_random_masks():
    rng = np.random.default_rng(1)
    truth = (rng.random((5, 16, 16, 1)) > 0.6).astype("float32")
    probs = rng.random((5, 16, 16, 1)).astype("float32")
    for i in range(5):
        t, p = truth[i].ravel(), (probs[i].ravel() >= 0.5)
        assert metrics.jaccard_per_image(truth, probs)[i] == pytest.approx(jaccard_score(t, p))
        assert metrics.dice_per_image(truth, probs)[i] == pytest.approx(f1_score(t, p))
    assert metrics.jaccard_dataset(truth, probs) == pytest.approx(
        jaccard_score(truth.ravel(), probs.ravel() >= 0.5)
    )


def test_keras_metric_functions_match_numpy():
    np.testing.assert_allclose(losses.dice_coefficient(TRUTH, PROBS), [1 / 2, 6 / 7], rtol=1e-6)
    np.testing.assert_allclose(losses.jaccard_index(TRUTH, PROBS), [1 / 3, 3 / 4], rtol=1e-6)
    np.testing.assert_allclose(
        losses.soft_dice_coefficient(TRUTH, PROBS),
        metrics.dice_per_image(TRUTH, PROBS, None),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        losses.soft_jaccard_index(TRUTH, PROBS),
        metrics.jaccard_per_image(TRUTH, PROBS, None),
        rtol=1e-5,
    )
    iou = keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5)
    iou.update_state(TRUTH, PROBS)
    assert float(iou.result()) == pytest.approx(4 / 7, rel=1e-5)


def test_segmentation_models_metrics_agree():
    os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
    import segmentation_models as sm

    # segmentation_models binarises with `p > t`, we (like keras.metrics.BinaryIoU) with
    # `p >= t`: they differ only on exact ties, so move the one tie (0.5) off the threshold.
    probs = np.where(PROBS == 0.5, 0.55, PROBS).astype("float32")
    iou = sm.metrics.IOUScore(threshold=0.5, per_image=True, smooth=1e-7)
    f1 = sm.metrics.FScore(beta=1, threshold=0.5, per_image=True, smooth=1e-7)
    assert float(iou(TRUTH, probs)) == pytest.approx(np.mean([1 / 3, 3 / 4]), abs=1e-5)
    assert float(f1(TRUTH, probs)) == pytest.approx(np.mean([1 / 2, 6 / 7]), abs=1e-5)
    soft = sm.metrics.IOUScore(per_image=True, smooth=1e-7)
    assert float(soft(TRUTH, probs)) == pytest.approx(
        metrics.jaccard_per_image(TRUTH, probs, None).mean(), abs=1e-5
    )
    soft_f1 = sm.metrics.FScore(beta=1, per_image=False, smooth=1e-7)
    assert float(soft_f1(TRUTH, probs)) == pytest.approx(
        metrics.dice_dataset(TRUTH, probs, None), abs=1e-5
    )


def test_ties_count_as_lesion_like_keras():
    assert metrics.dice_per_image(np.ones((1, 1, 1)), np.full((1, 1, 1), 0.5))[0] == 1.0


def test_dice_loss_is_per_image_mean():
    loss = float(losses.get_loss("dice")(TRUTH, PROBS))
    soft_dice = metrics.dice_per_image(TRUTH, PROBS, None)  # Keras adds only a 1e-7 epsilon
    assert loss == pytest.approx(1 - soft_dice.mean(), abs=1e-5)


def test_dice_bce_loss_by_hand():
    loss = losses.DiceBCELoss(dice_weight=0.5, bce_weight=2.0)
    p = np.clip(PROBS, 1e-7, 1 - 1e-7)
    bce = -(TRUTH * np.log(p) + (1 - TRUTH) * np.log(1 - p)).mean(axis=(1, 2, 3))
    dice = 1 - metrics.dice_per_image(TRUTH, PROBS, None)
    assert float(loss(TRUTH, PROBS)) == pytest.approx(np.mean(0.5 * dice + 2.0 * bce), rel=1e-4)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert clone.get_config() == loss.get_config()
    assert float(losses.get_loss("dice")(TRUTH, TRUTH)) == pytest.approx(0.0, abs=1e-6)


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown segmentation loss 'focal'"):
        losses.get_loss("focal")


def test_compiled_model_with_custom_loss_and_metrics_loads_safely(tmp_path):
    from tfmelanoma.models import create_model

    model = create_model("unet", input_shape=(8, 8, 3), base_filters=2, depth=1)
    model.compile(optimizer="adam", loss=losses.DiceBCELoss(), metrics=losses.keras_metrics())
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    y = (x[..., :1] > 127).astype("float32")
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(restored.loss, losses.DiceBCELoss)
    np.testing.assert_allclose(
        restored.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5
    )
