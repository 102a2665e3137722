"""The evaluation contract: `evaluate_predictions` writes the report folder and returns metrics."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from tfmelanoma.evaluation import EvalConfig, evaluate_predictions

BINARY = ["non_melanoma", "melanoma"]
FAST = EvalConfig(bootstrap_n=50, plots=False)


def _synthetic(n: int, seed: int, k: int = 2):
    """Labels and softmax probabilities of a moderately accurate, overconfident model."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1.5, (n, k))
    logits[np.arange(n), y] += 2.0
    z = 2.0 * logits  # overconfident: temperature scaling should help
    p = np.exp(z - z.max(1, keepdims=True))
    return y, p / p.sum(1, keepdims=True)


def test_writes_every_file_and_metrics_match_sklearn(tmp_path):
    yv, pv = _synthetic(300, 0)
    yt, pt = _synthetic(400, 1)
    ids = [f"ISIC_{i:05d}" for i in range(400)]
    out = tmp_path / "report"
    res = evaluate_predictions(yt, pt, ids, BINARY, out, yv, pv, EvalConfig(bootstrap_n=50))
    for name in (
        "metrics.json",
        "predictions.csv",
        "report.md",
        "report.html",
        "reliability.png",
        "reliability_melanoma.png",
        "accuracy_vs_threshold.png",
        "coverage.png",
        "roc.png",
        "threshold_selection.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "metrics.json").read_text()) == res
    before = res["before_rejection"]["values"]
    assert before["accuracy"] == pytest.approx(accuracy_score(yt, pt.argmax(1)))
    assert before["auc_roc"] == pytest.approx(roc_auc_score(yt, pt[:, 1]))
    lo, hi = res["before_rejection"]["ci"]["auc_roc"]
    assert lo < before["auc_roc"] < hi
    # The threshold is chosen on validation and frozen: it must be a grid value with enough
    # validation coverage, and test coverage is what that frozen threshold gives on test.
    rej = res["rejection"]
    assert rej["threshold"] in EvalConfig().threshold_grid
    assert rej["coverage_validation"] >= 0.8
    with (out / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["image_id"] for r in rows] == ids
    assert list(rows[0])[:5] == ["image_id", "label", "probability", "entropy", "decision"]
    kept = [float(r["entropy"]) <= rej["threshold"] for r in rows]
    assert rej["coverage_test"] == pytest.approx(np.mean(kept))
    assert all((r["decision"] == "uncertain") != k for r, k in zip(rows, kept, strict=True))
    assert res["after_rejection"]["values"]["n"] == sum(kept)
    # Misdiagnoses prevented are exactly the FP/FN ids that were rejected.
    fp_before = {i for i, y, p in zip(ids, yt, pt.argmax(1), strict=True) if y == 0 and p == 1}
    fp_kept = {
        i for i, y, p, k in zip(ids, yt, pt.argmax(1), kept, strict=True) if y == 0 and p == 1 and k
    }
    assert set(res["misdiagnoses"]["prevented"]["false_positive_ids"]) == fp_before - fp_kept
    assert rej["false_positives_prevented"] == len(fp_before - fp_kept)
    # Overconfident synthetic model: temperature > 1 and lower test ECE after scaling.
    cal = res["calibration"]
    assert cal["params"]["temperature"]["temperature"] > 1.0
    assert (
        cal["test"]["temperature"]["ece_top_label"] < cal["test"]["uncalibrated"]["ece_top_label"]
    )
    md = (out / "report.md").read_text()
    assert "![" in md and "reliability.png" in md and "after rejection" in md


@pytest.mark.parametrize("shape", ["vector", "column"])
def test_sigmoid_outputs_equal_two_column_softmax(tmp_path, shape):
    y, p2 = _synthetic(120, 2)
    p1 = p2[:, 1] if shape == "vector" else p2[:, 1:]
    a = evaluate_predictions(y, p1, None, BINARY, tmp_path / "a", config=FAST)
    b = evaluate_predictions(y, p2, None, BINARY, tmp_path / "b", config=FAST)
    # 1 - p and the softmax's own first column differ in the last bits only.
    assert a["before_rejection"]["values"] == pytest.approx(b["before_rejection"]["values"])
    for key, interval in b["before_rejection"]["ci"].items():
        assert a["before_rejection"]["ci"][key] == pytest.approx(interval), key


def test_multiclass_has_macro_and_melanoma_vs_rest(tmp_path):
    names = ["MEL", "NV", "BCC", "AK"]
    yv, pv = _synthetic(200, 3, k=4)
    yt, pt = _synthetic(200, 4, k=4)
    res = evaluate_predictions(yt, pt, None, names, tmp_path, yv, pv, FAST)
    v = res["before_rejection"]["values"]
    assert v["macro_auc_roc"] == pytest.approx(roc_auc_score(yt, pt, multi_class="ovr"))
    assert v["melanoma_auc_roc"] == pytest.approx(roc_auc_score(yt == 0, pt[:, 0]))
    assert res["positive_class"] == "MEL"
    assert "platt skipped" not in " ".join(res["calibration"]["notes"])  # only temperature asked


def test_multiclass_without_melanoma_class(tmp_path):
    yt, pt = _synthetic(90, 8, k=3)
    res = evaluate_predictions(yt, pt, None, ["a", "b", "c"], tmp_path, yt, pt, FAST)
    assert res["positive_class"] is None and "misdiagnoses" not in res
    assert "auc_roc" not in res["before_rejection"]["values"]
    assert res["before_rejection"]["values"]["macro_f1"] > 0
    assert (tmp_path / "report.html").read_text().count("<table>") == 3


def test_without_validation_nothing_is_rejected(tmp_path):
    y, p = _synthetic(80, 5)
    res = evaluate_predictions(y, p, None, BINARY, tmp_path, config=FAST)
    assert res["rejection"]["threshold"] is None
    assert res["rejection"]["coverage_test"] == 1.0
    assert "no validation" in res["calibration"]["notes"][0]


def test_fixed_threshold_is_applied(tmp_path):
    y, p = _synthetic(80, 6)
    res = evaluate_predictions(
        y,
        p,
        None,
        BINARY,
        tmp_path,
        config={"entropy_threshold": 0.5, "bootstrap_n": 0, "plots": False},
    )
    assert res["rejection"]["threshold"] == 0.5
    assert res["before_rejection"]["ci"] == {}


def test_bad_input_errors(tmp_path):
    y, p = _synthetic(20, 7)
    with pytest.raises(ValueError, match="outputs 2 class probabilities but the dataset has 9"):
        evaluate_predictions(y, p, None, [f"c{i}" for i in range(9)], tmp_path)
    with pytest.raises(ValueError, match="empty"):
        evaluate_predictions([], np.zeros((0, 2)), [], BINARY, tmp_path)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\].*1.5"):
        evaluate_predictions(y, p, None, BINARY, tmp_path, config={"entropy_threshold": 1.5})
    with pytest.raises(ValueError, match=r"threshold_grid must be in \[0, 1\]"):
        EvalConfig(threshold_grid=(0.1, -0.2))
    with pytest.raises(ValueError, match="label 3 but the model outputs 2 classes"):
        evaluate_predictions(np.r_[y[:-1], 3], p, None, BINARY, tmp_path)
    with pytest.raises(ValueError, match="not logits"):
        evaluate_predictions(y, p * 5 - 2, None, BINARY, tmp_path)
    with pytest.raises(ValueError, match="unknown evaluation settings"):
        evaluate_predictions(y, p, None, BINARY, tmp_path, config={"bins": 5})
    with pytest.raises(ValueError, match="19 image ids but 20"):
        evaluate_predictions(y, p, [str(i) for i in range(19)], BINARY, tmp_path)
    assert not (tmp_path / "metrics.json").exists()  # nothing half-written on a bad call


def test_probabilities_exactly_zero_and_one_give_finite_numbers(tmp_path):
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.5])
    # The entropy column of the model's own probabilities (rejection on the temperature-scaled
    # ones is the default, and a fitted temperature softens the one-hot rows).
    cfg = dataclasses.replace(FAST, reject_on_calibrated=False)
    res = evaluate_predictions(y, p, None, BINARY, tmp_path, y, p, cfg)
    v = res["before_rejection"]["values"]
    assert np.isfinite(v["log_loss"]) and np.isfinite(v["ece_top_label"])
    with (tmp_path / "predictions.csv").open() as fh:
        ent = [float(r["entropy"]) for r in csv.DictReader(fh)]
    assert ent == pytest.approx([0, 0, 0, 0, 0, 1])


def test_nothing_retained_is_reported_not_crashed(tmp_path):
    y = np.array([0, 1, 0, 1])
    p = np.array([0.3, 0.6, 0.4, 0.8])  # no one-hot row: every entropy > 0
    cfg = {"entropy_threshold": 0.0, "bootstrap_n": 10}
    res = evaluate_predictions(y, p, None, BINARY, tmp_path, config=cfg)
    assert res["after_rejection"]["values"] == {"n": 0}
    assert res["summary"]["accuracy_after_rejection"] is None
    assert "| images | 4 | 0 |" in (tmp_path / "report.md").read_text()
