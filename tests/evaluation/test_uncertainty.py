"""Normalised entropy and the paper's threshold-selection rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from tfmelanoma.evaluation import calibration, uncertainty


def test_entropy_hand_cases_and_no_nan_at_zero_and_one():
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.9, 0.1]])
    h = uncertainty.normalized_entropy(probs)
    expected = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1)) / np.log(2)
    np.testing.assert_allclose(h, [0.0, 1.0, 0.0, expected])
    assert uncertainty.normalized_entropy(np.array([[1.0, 0, 0, 0]]))[0] == 0.0
    assert uncertainty.normalized_entropy(np.full((1, 9), 1 / 9))[0] == pytest.approx(1.0)


def test_entropy_matches_scipy():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7), 50)
    np.testing.assert_allclose(
        uncertainty.normalized_entropy(p), scipy_entropy(p, axis=1) / np.log(7)
    )


def test_rule_brier_is_the_papers_binary_brier():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 40)
    p = rng.random(40)
    assert uncertainty.rule_brier(y, np.stack([1 - p, p], 1)) == pytest.approx(
        calibration.brier_binary(y, p)
    )


def _brute_force_rule(y, probs, grid, min_cov, bins):
    """Independent restatement of the rule: loop, keep the best (ties: later threshold)."""
    h = uncertainty.normalized_entropy(probs)
    best, best_t = np.inf, None
    for t in grid:
        keep = h <= t
        if keep.mean() < min_cov or not keep.any():
            continue
        yk, pk = y[keep], probs[keep]
        brier = np.mean(np.sum((pk - np.eye(probs.shape[1])[yk]) ** 2, 1)) / 2
        value = (calibration.ece_top_label(yk, pk, bins) + brier) / 2
        if value <= best + 1e-12:
            best, best_t = min(best, value), t
    return best_t


@pytest.mark.parametrize("seed", range(3))
def test_select_threshold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    logits = rng.normal(0, 2, (300, 2))
    logits[np.arange(300), y] += 1
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    grid = tuple(np.round(np.linspace(0, 1, 51), 2))
    t, sweep = uncertainty.select_threshold(y, probs, grid, 0.7, 10)
    assert t == _brute_force_rule(y, probs, grid, 0.7, 10)
    h = uncertainty.normalized_entropy(probs)
    assert np.mean(h <= t) >= 0.7
    assert sweep["coverage"][-1] == 1.0


def test_rejecting_uncertain_predictions_helps_when_entropy_is_informative():
    # Confident predictions are right, uncertain ones a coin toss: the rule must reject some.
    rng = np.random.default_rng(0)
    conf = np.r_[np.full(800, 0.98), np.full(200, 0.55)]
    y = np.r_[np.ones(800, int), rng.integers(0, 2, 200)]
    probs = np.stack([1 - conf, conf], 1)
    t, _ = uncertainty.select_threshold(y, probs, (0.1, 0.2, 0.5, 0.9, 1.0), 0.8)
    h = uncertainty.normalized_entropy(probs)
    assert h[0] <= t < h[-1]


def test_min_coverage_unreachable_and_bad_thresholds():
    probs = np.array([[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="no threshold in the grid"):
        uncertainty.select_threshold([0, 1], probs, (0.0, 0.5), 0.8)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        uncertainty.select_threshold([0, 1], probs, (0.5, 1.2), 0.8)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        uncertainty.retained_mask(np.zeros(2), float("nan"))


def test_decisions_mark_uncertain():
    probs = np.array([[0.99, 0.01], [0.45, 0.55]])
    h = uncertainty.normalized_entropy(probs)
    assert uncertainty.decisions(probs, h, 0.5, ["non_melanoma", "melanoma"]) == [
        "non_melanoma",
        "uncertain",
    ]
    assert uncertainty.decisions(probs, h, None, ["a", "b"]) == ["a", "b"]
