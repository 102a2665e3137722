"""Calibration metrics and calibrators: hand cases, an independent loop implementation, sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from tfmelanoma.evaluation import calibration as cal


def _ece_loop(conf, hit, n_bins):
    """Independent ECE: explicit loop over bins (lo, hi], written from the formula only."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i, c in enumerate(conf) if (lo < c <= hi) or (b == 0 and c == 0)]
        if members:
            acc = sum(hit[i] for i in members) / len(members)
            avg = sum(conf[i] for i in members) / len(members)
            total += len(members) / len(conf) * abs(acc - avg)
    return total


def test_ece_hand_computed():
    # Two bins used: conf 0.6 (x2, one right) and 0.9 (x2, both right).
    probs = np.array([[0.6, 0.4], [0.4, 0.6], [0.9, 0.1], [0.1, 0.9]])
    y = np.array([0, 0, 0, 1])
    # Bin (0.5,0.6]: acc 0.5, conf 0.6 -> 0.1 * 2/4; bin (0.8,0.9]: acc 1, conf .9 -> .1 * 2/4.
    assert cal.ece_top_label(y, probs, 10) == pytest.approx(0.1)
    # Melanoma form: P(mel) .4 (y 0), .6 (y 0), .1 (y 0), .9 (y 1): bins hold one each ->
    # (|0-.4| + |0-.6| + |0-.1| + |1-.9|) / 4.
    assert cal.ece_melanoma(y, probs[:, 1], 10) == pytest.approx((0.4 + 0.6 + 0.1 + 0.1) / 4)


@pytest.mark.parametrize(("seed", "bins"), [(0, 10), (1, 15), (2, 5)])
def test_ece_matches_independent_loop(seed, bins):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (300, 3))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 3, 300)
    conf = probs.max(1)
    hit = (probs.argmax(1) == y).astype(float)
    assert cal.ece_top_label(y, probs, bins) == pytest.approx(_ece_loop(conf, hit, bins))
    assert cal.ece_melanoma(y == 0, probs[:, 0], bins) == pytest.approx(
        _ece_loop(probs[:, 0], (y == 0).astype(float), bins)
    )


def test_bin_edges_are_right_closed():
    # 0.5 belongs to (0.4, 0.5], 0.0 to the first bin, 1.0 to the last.
    b = cal.reliability_bins(np.array([0.0, 0.5, 1.0]), np.array([1, 1, 1]), 10)
    assert b["count"][0] == 1 and b["count"][4] == 1 and b["count"][9] == 1


def test_brier_and_log_loss_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 100)
    p = rng.random(100)
    p[:3] = [0.0, 1.0, 1.0]
    probs = np.stack([1 - p, p], 1)
    assert cal.brier_binary(y, p) == pytest.approx(brier_score_loss(y, p))
    assert cal.brier_multiclass(y, probs) == pytest.approx(2 * brier_score_loss(y, p))
    clipped = np.clip(probs, 1e-12, 1)
    assert np.isfinite(cal.log_loss(y, probs))
    assert cal.log_loss(y, probs) == pytest.approx(
        log_loss(y, clipped / clipped.sum(1, keepdims=True)), rel=1e-6
    )


def test_temperature_scaling_recovers_known_temperature():
    # Labels drawn from softmax(z); the model reports softmax(3 z): fitted T must be about 3.
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, (20000, 3))
    true_p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in true_p])
    reported = np.exp(3 * z) / np.exp(3 * z).sum(1, keepdims=True)
    t = cal.fit_temperature(y, reported)
    assert t == pytest.approx(3.0, rel=0.05)
    fixed = cal.apply_temperature(reported, t)
    assert cal.ece_top_label(y, fixed) < cal.ece_top_label(y, reported) / 3
    np.testing.assert_allclose(fixed, true_p, atol=0.02)


def test_temperature_on_sigmoid_equals_logit_scaling():
    p = np.array([0.1, 0.5, 0.97])
    got = cal.apply_temperature(np.stack([1 - p, p], 1), 2.0)[:, 1]
    logit = np.log(p / (1 - p))
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-logit / 2.0)))


def test_platt_and_isotonic_improve_a_distorted_binary_model():
    rng = np.random.default_rng(1)
    true_p = rng.random(4000)
    y = (rng.random(4000) < true_p).astype(int)
    distorted = true_p**3  # systematically under-confident about melanoma
    probs = np.stack([1 - distorted, distorted], 1)
    before = cal.ece_melanoma(y, distorted)
    for method in ("platt", "isotonic", "temperature"):
        c = cal.fit_calibrator(method, y[:2000], probs[:2000])
        after = c.apply(probs[2000:])
        np.testing.assert_allclose(after.sum(1), 1.0)
        assert cal.ece_melanoma(y[2000:], after[:, 1]) < before, method


def test_binary_only_calibrators_reject_multiclass():
    with pytest.raises(ValueError, match="binary-only"):
        cal.fit_calibrator("platt", [0, 1, 2], np.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="unknown calibration method"):
        cal.fit_calibrator("beta", [0, 1], np.full((2, 2), 0.5))


def test_temperature_beyond_the_first_search_range_is_found_not_clipped():
    # The reported logits are 30 x the true ones: T = 30 lies outside the first range (0.05-20);
    # the search widens instead of returning its bound (issue #18: the demo model stopped at 20).
    rng = np.random.default_rng(0)
    z = rng.normal(0, 0.3, (20000, 2))
    true_p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random(20000) < true_p[:, 1]).astype(int)
    reported = np.exp(30 * z) / np.exp(30 * z).sum(1, keepdims=True)
    t, at_bound = cal.fit_temperature(y, reported, with_info=True)
    assert t == pytest.approx(30.0, rel=0.05) and not at_bound
    assert cal.fit_calibrator("temperature", y, reported).params == {"temperature": t}


def test_probabilities_without_signal_hit_the_widest_bound_and_say_so(tmp_path, caplog):
    # Confident outputs unrelated to the labels: the best temperature is infinite (uniform).
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.where(rng.random(400) < 0.5, 0.99, 0.01)
    probs = np.stack([1 - p, p], 1)
    with caplog.at_level("WARNING", logger="tfmelanoma.evaluation.calibration"):
        fitted = cal.fit_calibrator("temperature", y, probs)
    assert fitted.params["at_search_bound"] is True
    assert fitted.params["temperature"] >= cal.TEMPERATURE_WIDEST[1] / 10
    assert "widest search bound" in caplog.text
    np.testing.assert_allclose(fitted.apply(probs), 0.5, atol=0.01)

    from tfmelanoma.evaluation import evaluate_predictions

    result = evaluate_predictions(
        y, probs, None, ["non_melanoma", "melanoma"], tmp_path, val_labels=y, val_probs=probs,
        config={"plots": False, "bootstrap_n": 50},
    )  # fmt: skip
    notes = result["calibration"]["notes"]
    assert any("widest search bound" in n and "near uniform" in n for n in notes), notes
