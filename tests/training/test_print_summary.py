"""The default run's terminal summary (issue #20): numbers in words, intervals, operating point."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tfmelanoma.evaluation import EvalConfig, evaluate_predictions
from tfmelanoma.train import _print_summary


def _near_half(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.29).astype(int)
    p1 = 1 / (1 + np.exp(-0.15 * (rng.normal(0, 1.0, n) + 1.6 * (y - 0.3))))
    return y, np.c_[1 - p1, p1]


def test_summary_explains_numbers_with_intervals_and_operating_point(tmp_path, capsys):
    (yv, pv), (yt, pt) = _near_half(110, 0), _near_half(112, 1)
    res = evaluate_predictions(
        yt, pt, None, ["non_melanoma", "melanoma"], tmp_path, yv, pv,
        EvalConfig(bootstrap_n=50, plots=False),
    )  # fmt: skip
    s = res["summary"]
    _print_summary(Path("runs/x"), {"best_epoch": 3, "epochs_done": 4, "test": s})
    out = capsys.readouterr().out
    assert "test set (112 images)" in out and "95% bootstrap interval" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("sensitivity"))
    low, high = s["sensitivity_ci_low"], s["sensitivity_ci_high"]
    assert f"{s['sensitivity']:.2f} ({low:.2f}-{high:.2f})" in line and "0.5 cut-off" in line
    assert re.search(r"AUC-ROC +\d\.\d\d \(\d\.\d\d-\d\.\d\d\) +how well", out)
    assert not re.search(r"\d\.\d{4,}", out)  # rounded (a cut-off has 3 decimals), not 0.94117
    cut = f"{s['operating_threshold']:.3f}"
    assert f"temperature-scaled P(melanoma) >= {cut}" in out
    assert "reaches 90% sensitivity on validation" in out
    valid = f"validation {s['operating_sensitivity_validation']:.2f}"
    assert valid in out and s["operating_sensitivity_validation"] >= 0.9
    assert f"{s['n_rejected']} test images" in out and "on the images kept" in out
    assert "report: runs/x/evaluation/report.md" in out
