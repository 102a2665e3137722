"""Metric functions against hand-computed cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tfmelanoma.evaluation import metrics as m

# Hand case: y = 1 1 1 0 0 0 0 0, pred = 1 1 0 1 0 0 0 0 -> TP 2, FP 1, TN 4, FN 1.
Y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
PRED = np.array([1, 1, 0, 1, 0, 0, 0, 0])


def test_hand_computed_confusion_metrics():
    assert m.confusion_counts(Y, PRED) == (2, 1, 4, 1)
    assert m.precision(Y, PRED) == pytest.approx(2 / 3)
    assert m.sensitivity(Y, PRED) == pytest.approx(2 / 3)
    assert m.specificity(Y, PRED) == pytest.approx(4 / 5)
    assert m.f1(Y, PRED) == pytest.approx(4 / 6)
    assert m.accuracy(Y, PRED) == pytest.approx(6 / 8)
    assert m.balanced_accuracy(Y, PRED) == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_hand_computed_auc_and_ap_with_ties():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.4, 0.8])
    # Pairs (pos, neg): (0.4>0.1)=1, (0.4=0.4)=0.5, (0.8>0.1)=1, (0.8>0.4)=1 -> 3.5 / 4.
    assert m.roc_auc(y, s) == pytest.approx(3.5 / 4)
    # Thresholds 0.8: P=1, R=.5; 0.4: P=2/3, R=1 -> AP = .5*1 + .5*2/3.
    assert m.average_precision(y, s) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_undefined_metrics_are_nan_not_zero():
    assert np.isnan(m.precision([1, 0], [0, 0]))
    assert np.isnan(m.roc_auc([1, 1], [0.2, 0.9]))
    assert np.isnan(m.average_precision([0, 0], [0.2, 0.9]))


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = np.round(np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1), 2)  # rounded: many ties
    pred = (s >= 0.5).astype(int)
    got = m.binary_metrics(y, s, pred)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert got["specificity"] == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert got["auc_roc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert got["average_precision"] == pytest.approx(skm.average_precision_score(y, s))


def test_macro_metrics_match_sklearn():
    rng = np.random.default_rng(7)
    k = 5
    y = rng.integers(0, k, 300)
    logits = rng.normal(size=(300, k))
    logits[np.arange(300), y] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pred = probs.argmax(1)
    got = m.macro_metrics(y, probs, pred)
    assert got["macro_precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert got["macro_sensitivity"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["macro_auc_roc"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))


def test_misdiagnoses_listed_by_id():
    ids = [f"im{i}" for i in range(8)]
    got = m.misdiagnoses(Y, PRED, ids)
    assert got == {"false_positive_ids": ["im3"], "false_negative_ids": ["im2"]}


def test_bootstrap_is_seeded_and_covers_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.clip(y * 0.4 + rng.random(500) * 0.6, 0, 1)

    def compute(idx):
        return {"auc": m.roc_auc(y[idx], s[idx])}

    a = m.bootstrap_intervals(compute, 500, n_boot=200, seed=3)
    b = m.bootstrap_intervals(compute, 500, n_boot=200, seed=3)
    c = m.bootstrap_intervals(compute, 500, n_boot=200, seed=4)
    assert a == b and a != c
    lo, hi = a["auc"]
    auc = m.roc_auc(y, s)
    assert lo < auc < hi
    # Normal-approximation check: the width is close to 2 * 1.96 * bootstrap SD of AUC.
    assert 0.02 < hi - lo < 0.15


def test_age_mae_counts_known_ages_only():
    # unknown (-1) rows are left out whatever was predicted for them: |50-40| and |20-30| -> 10
    out = m.age_mae([-1, 40, 30, -1], [[99.0], [50.0], [20.0], [0.0]])
    assert out == {"age_mae_years": pytest.approx(10.0), "n_age_known": 2}
    none = m.age_mae([-1, -1], [1.0, 2.0])
    assert np.isnan(none["age_mae_years"]) and none["n_age_known"] == 0


def test_age_bin_accuracy_hand_computed():
    # edges (30, 60): bins <30 | 30-59 | >=60; ages 10 -> 0, 30 -> 1, 75 -> 2; -1 left out
    probs = [[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [1.0, 0.0, 0.0]]
    out = m.age_bin_accuracy([10, 30, 75, -1], probs, (30, 60))
    assert out == {"age_accuracy": pytest.approx(2 / 3), "n_age_known": 3}
