"""Issue #20: the report of a short default run (outputs near 0.5) tells a story, not a blank."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from tfmelanoma.evaluation import (
    EvalConfig,
    calibration,
    evaluate_predictions,
    metrics,
    plots,
    uncertainty,
)

BINARY = ["non_melanoma", "melanoma"]
FAST = EvalConfig(bootstrap_n=50, plots=False)


def _near_half(n: int, seed: int):
    """A short CPU run's outputs: ranks well (AUC ~0.9) but every probability within 0.4-0.6."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.29).astype(int)
    z = rng.normal(0, 1.0, n) + 1.6 * (y - 0.3)
    p1 = 1 / (1 + np.exp(-0.15 * z))
    return y, np.c_[1 - p1, p1]


def _ids(n: int) -> list[str]:
    return [f"ISIC_{i:07d}" for i in range(n)]


def test_calibrated_rejection_rejects_what_the_raw_outputs_cannot(tmp_path):
    yv, pv = _near_half(110, 0)
    yt, pt = _near_half(112, 1)
    args = (yt, pt, _ids(112), BINARY)
    res = evaluate_predictions(*args, tmp_path / "cal", yv, pv, FAST)
    rej = res["rejection"]
    assert res["calibration"]["params"]["temperature"]["temperature"] < 0.5  # sharpened
    assert rej["entropy_from"] == "temperature-scaled probabilities"
    assert rej["threshold"] < 1.0 and rej["n_rejected"] > 0 and rej["notes"] == []
    assert rej["coverage_validation"] >= FAST.min_coverage
    assert res["summary"]["n_rejected"] == rej["n_rejected"]

    raw = evaluate_predictions(
        *args, tmp_path / "raw", yv, pv, dataclasses.replace(FAST, reject_on_calibrated=False)
    )
    rej = raw["rejection"]
    assert rej["entropy_from"] == "model probabilities"
    assert rej["threshold"] == 1.0 and rej["n_rejected"] == 0
    assert rej["entropy_range_test"][0] > 0.9  # every raw entropy is near 1
    notes = " ".join(rej["notes"])
    assert "upper bound (1.00)" in notes and "Nothing was rejected on test" in notes
    md = (tmp_path / "raw" / "report.md").read_text()
    assert "Nothing was rejected on test" in md
    assert "| metric | all test images [95% CI] |" in md and "after rejection [" not in md
    # Each misdiagnosed id once in the report (metrics.json keeps every list).
    section = md.split("## Misdiagnoses by image id")[1]
    listed = re.findall(r"ISIC_\d{7}", section)
    assert listed and len(listed) == len(set(listed))
    mis = raw["misdiagnoses"]["before_rejection"]
    assert sorted(listed) == sorted(mis["false_positive_ids"] + mis["false_negative_ids"])


def test_rejected_and_kept_misdiagnoses_are_listed_once_each(tmp_path):
    yv, pv = _near_half(110, 0)
    yt, pt = _near_half(112, 1)
    res = evaluate_predictions(yt, pt, _ids(112), BINARY, tmp_path, yv, pv, FAST)
    section = (tmp_path / "report.md").read_text().split("## Misdiagnoses by image id")[1]
    listed = re.findall(r"ISIC_\d{7}", section)
    m = res["misdiagnoses"]
    every = (
        m["before_rejection"]["false_positive_ids"] + m["before_rejection"]["false_negative_ids"]
    )
    assert m["prevented"]["false_positive_ids"]  # something was referred
    assert sorted(listed) == sorted(every)
    assert "rejected, referred to a human" in section


def test_threshold_plots_zoom_to_the_entropies(tmp_path, monkeypatch):
    yv, pv = _near_half(110, 0)
    yt, pt = _near_half(112, 1)
    limits, scales = {}, {}
    save = plots._save

    def spy(fig, path):
        limits[path.name] = fig.axes[0].get_xlim()
        scales[path.name] = fig.axes[0].get_xscale()
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    cfg = EvalConfig(bootstrap_n=0, reject_on_calibrated=False)
    res = evaluate_predictions(yt, pt, None, BINARY, tmp_path, yv, pv, cfg)
    h = np.r_[uncertainty.normalized_entropy(pv), uncertainty.normalized_entropy(pt)]
    assert h.min() > 0.9  # the case of the issue: all data in [0.96, 1]
    assert res["rejection"]["threshold"] == 1.0
    for name in ("accuracy_vs_threshold.png", "coverage.png", "threshold_selection.png"):
        lo, hi = limits[name]
        assert lo <= h.min() and hi >= h.max(), name  # covers the data ...
        assert hi - lo < 0.1, name  # ... and is not the whole 0-1 axis
        # The chosen 1.00 shown: inside a linear axis, at the edge of a logit one (see below).
        assert hi >= 1.0 if scales[name] == "linear" else hi > 1 - 1e-6, name
    assert limits["risk_coverage.png"] == (0.0, 1.0)  # coverage spans 0-1 by nature
    assert "risk_coverage.png" in res["files"]

    # Outputs within 0.5 +- 0.02 (the default run of issue #20): entropies 0.998-1, half of them
    # above 0.9999. A linear axis shows a vertical line at its right edge; a logit axis spreads them.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p1 = 0.5 + rng.normal(0, 0.008, 300).clip(-0.02, 0.02) + 0.004 * (y - 0.5)
    probs = np.c_[1 - p1, p1]
    h = uncertainty.normalized_entropy(probs)
    sweep = uncertainty.threshold_sweep(y, probs, uncertainty.plot_grid([h], (1.0,), 1.0))
    plots.threshold_curve({"test": sweep}, "coverage", 1.0, "coverage", tmp_path / "crowded.png")
    lo, hi = limits["crowded.png"]
    assert scales["crowded.png"] == "logit"
    assert lo <= h.min() and hi >= h.max() and hi - lo < 0.01


def test_operating_point_meets_the_target_on_validation(tmp_path):
    yv, pv = _near_half(110, 0)
    yt, pt = _near_half(112, 1)
    res = evaluate_predictions(
        yt, pt, None, BINARY, tmp_path, yv, pv, FAST, target_sensitivity=0.95
    )
    op = res["operating_point"]
    assert op["target_sensitivity"] == 0.95
    cut = op["threshold"]
    assert op["probabilities"] == "temperature-scaled P(melanoma)"
    t = res["calibration"]["params"]["temperature"]["temperature"]
    pv_cal = calibration.apply_temperature(pv, t)
    pos = pv_cal[yv == 1, 1]
    assert np.mean(pos >= cut) >= 0.95
    assert op["validation"]["sensitivity"] == pytest.approx(np.mean(pos >= cut))
    assert np.mean(pos >= np.nextafter(cut, 1.0)) < 0.95  # the largest such cut-off
    pt_cal = calibration.apply_temperature(pt, t)
    expected = metrics.binary_metrics(yt == 1, pt_cal[:, 1], pt_cal[:, 1] >= cut)
    assert op["test"]["values"]["specificity"] == pytest.approx(expected["specificity"])
    lo, hi = op["test"]["ci"]["specificity"]
    assert lo <= expected["specificity"] <= hi
    s = res["summary"]
    assert s["operating_sensitivity_validation"] >= 0.95
    assert s["operating_specificity"] == pytest.approx(expected["specificity"])
    assert json.loads((tmp_path / "metrics.json").read_text())["operating_point"]["threshold"] == (
        pytest.approx(cut)
    )
    md = (tmp_path / "report.md").read_text()
    assert "## Operating point for screening (chosen on validation)" in md
    assert "Target sensitivity 95% on validation" in md
    with pytest.raises(ValueError, match=r"target sensitivity must be in \(0, 1\]"):
        evaluate_predictions(yt, pt, None, BINARY, tmp_path, yv, pv, FAST, target_sensitivity=0)


def test_threshold_for_sensitivity_by_hand():
    y = np.array([1, 1, 1, 1, 0, 0, 0])
    p = np.array([0.9, 0.7, 0.4, 0.2, 0.8, 0.3, 0.1])
    assert metrics.threshold_for_sensitivity(y, p, 0.75) == 0.4  # 3 of 4 positives >= 0.4
    assert metrics.threshold_for_sensitivity(y, p, 0.76) == 0.2  # needs all 4
    assert metrics.threshold_for_sensitivity(y, p, 0.5) == 0.7
    assert np.isnan(metrics.threshold_for_sensitivity(np.zeros(3), np.ones(3) / 2, 0.9))


def test_a_model_without_signal_is_explained_not_silently_unrejected(tmp_path):
    # Every P(melanoma) given once to a melanoma and once to a nevus: no ranking signal at all,
    # and confident (0.45-0.99) where half are wrong: the best temperature flattens it all.
    p = np.repeat(np.random.default_rng(3).uniform(0.45, 0.99, 100), 2)
    y = np.tile([0, 1], 100)
    res = evaluate_predictions(y, p, None, BINARY, tmp_path, y, p, FAST)
    # The search widens past its first range (0.05-20) and stops near the widest bound (1000).
    params = res["calibration"]["params"]["temperature"]
    assert params["temperature"] >= 100 and params["at_search_bound"] is True
    assert res["rejection"]["n_rejected"] == 0
    note = res["summary"]["rejection_note"]
    assert (
        "top of its search range (T = " in note
        and "no better on validation than 0.5 for every image" in note
    )
    assert "Nothing was rejected on test" in note
