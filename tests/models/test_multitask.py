"""Multi-task model: heads, per-head losses / weights / metrics on a tiny dataset with age."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_absolute_error

from tfmelanoma.models.multitask import (
    age_to_bin,
    compile_multitask,
    multitask_model,
    multitask_targets,
)

TINY = {"backbone": "meshnet", "input_shape": (32, 32, 3), "width": 8, "dilations": (1, 2, 1)}
LABELS = np.array([0, 1, 0, 1, 1, 0, 1, 0])
AGES = np.array([-1, 10, 30, 44, 80, 60, -1, 52])  # -1 = unknown, as in the example schema


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")


def test_age_to_bin_hand_computed():
    # edges (30, 45, 60, 75): <30 | 30-44 | 45-59 | 60-74 | >=75; unknown -> 0 (weight 0)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(age_to_bin(np.array([-1, 10, 29.5, 30, 44, 45, 74, 75, 90]))),
        [0, 0, 0, 1, 1, 2, 3, 4, 4],
    )


def test_bins_losses_and_metrics_match_references(images):
    keras.utils.set_random_seed(0)
    model = compile_multitask(multitask_model(**TINY), loss_weights={"diagnosis": 1.0, "age": 0.25})
    targets, weights = multitask_targets(model, LABELS, AGES)
    logs = model.evaluate(images, targets, sample_weight=weights, return_dict=True, verbose=0)
    pred = model.predict(images, verbose=0)
    assert pred["diagnosis"].shape == (8, 2) and pred["age"].shape == (8, 5)

    known = AGES >= 0
    age_bins = keras.ops.convert_to_numpy(targets["age"])
    diag_ref = log_loss(LABELS, pred["diagnosis"], labels=[0, 1])
    age_ref = log_loss(
        age_bins[known], pred["age"][known], labels=range(5)
    )  # unknown ages left out
    assert logs["diagnosis_loss"] == pytest.approx(diag_ref, rel=1e-4)
    assert logs["age_loss"] == pytest.approx(age_ref, rel=1e-4)
    assert logs["loss"] == pytest.approx(diag_ref + 0.25 * age_ref, rel=1e-4)
    acc_ref = np.mean(pred["age"][known].argmax(-1) == age_bins[known])
    assert logs["age_accuracy"] == pytest.approx(acc_ref, abs=1e-6)


def test_regression_head_in_years(images):
    keras.utils.set_random_seed(0)
    model = compile_multitask(multitask_model(age="regression", **TINY))
    targets, weights = multitask_targets(model, LABELS, AGES)
    logs = model.evaluate(images, targets, sample_weight=weights, return_dict=True, verbose=0)
    pred = model.predict(images, verbose=0)
    assert pred["age"].shape == (8, 1)
    known = AGES >= 0
    assert logs["age_mae_years"] == pytest.approx(
        mean_absolute_error(AGES[known], pred["age"][known, 0]), rel=1e-4
    )


def test_training_reduces_both_losses(images):
    keras.utils.set_random_seed(1)
    model = compile_multitask(multitask_model(**TINY), optimizer=keras.optimizers.Adam(3e-3))
    targets, weights = multitask_targets(model, LABELS, AGES)
    history = model.fit(
        images, targets, sample_weight=weights, epochs=30, batch_size=8, verbose=0
    ).history
    assert history["diagnosis_loss"][-1] < history["diagnosis_loss"][0]
    assert history["age_loss"][-1] < history["age_loss"][0]


def test_sigmoid_diagnosis_and_one_hot_labels(images):
    model = compile_multitask(multitask_model(num_classes=1, **TINY))
    targets, weights = multitask_targets(model, LABELS, AGES)
    logs = model.evaluate(images, targets, sample_weight=weights, return_dict=True, verbose=0)
    assert {"diagnosis_auc", "diagnosis_accuracy", "age_accuracy"} <= set(logs)
    model2 = multitask_model(**TINY)
    one_hot, _ = multitask_targets(model2, keras.utils.to_categorical(LABELS, 2), AGES)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(one_hot["diagnosis"]), LABELS)


@pytest.mark.parametrize(
    "kwargs, match", [({"age": "decades"}, "age must be"), ({"age_edges": (50, 30)}, "increasing")]
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        multitask_model(**TINY, **kwargs)


# The model is saved untrained: its optimizer has no slots yet, which Keras warns about on load.
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_regression_loss_keeps_its_delta_through_save_and_load(tmp_path, images):
    """Keras's Huber drops `delta` from its config; a resumed run must train with the same loss."""
    model = compile_multitask(multitask_model(age="regression", **TINY))
    targets, weights = multitask_targets(model, LABELS, AGES)
    before = model.evaluate(images, targets, sample_weight=weights, return_dict=True, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    after = loaded.evaluate(images, targets, sample_weight=weights, return_dict=True, verbose=0)
    assert after["age_loss"] == pytest.approx(before["age_loss"], rel=1e-5)
