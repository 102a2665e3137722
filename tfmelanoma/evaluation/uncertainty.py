"""Entropy-based rejection (the uncertainty paper, sections 2.3-2.4 and 4).

A prediction whose normalised Shannon entropy is strictly above a threshold becomes "uncertain"
and is referred to a human. The threshold is chosen on validation data by the paper's rule —
minimise the mean of ECE and Brier score over the *retained* predictions, over a grid, subject
to a minimum coverage — and then frozen and applied unchanged to the test split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import xlogy

from tfmelanoma.evaluation import calibration
from tfmelanoma.evaluation.config import check_threshold

UNCERTAIN = "uncertain"


def normalized_entropy(probs) -> np.ndarray:
    """H(p) / log K = -sum_k p_k log p_k / log K, in [0, 1].

    0 log 0 is taken as 0 (scipy's `xlogy`), so one-hot predictions give exactly 0, never NaN.

    Args:
        probs: (N, K) probabilities, K >= 2.

    Returns:
        (N,) float64 normalised entropies.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"entropy needs (N, K >= 2) probabilities, got shape {p.shape}")
    h = -np.sum(xlogy(p, p), axis=1) / np.log(p.shape[1])
    return np.clip(h, 0.0, 1.0)


def rule_brier(y_true, probs) -> float:
    """The Brier term of the selection rule: multi-class Brier / 2, in [0, 1].

    For two classes this equals the paper's binary Brier score (eq. 3) exactly; for K classes it
    keeps the term on the same [0, 1] scale as ECE.
    """
    return calibration.brier_multiclass(y_true, probs) / 2.0


def retained_mask(entropy, threshold: float) -> np.ndarray:
    """True where a prediction is kept: normalised entropy <= threshold."""
    check_threshold(threshold)
    return np.asarray(entropy) <= threshold


def threshold_sweep(
    y_true, probs, grid: Sequence[float], n_bins: int = 10, entropy=None
) -> dict[str, np.ndarray]:
    """Coverage, accuracy, ECE, Brier and the rule's criterion at each candidate threshold.

    Args:
        y_true: (N,) class indices.
        probs: (N, K) probabilities.
        grid: thresholds in [0, 1].
        n_bins: ECE bins.
        entropy: precomputed normalised entropy of `probs` (else computed).

    Returns:
        Dict of (G,) arrays: threshold, coverage, accuracy, ece, brier, criterion
        (= (ece + brier) / 2), n_retained; metric values are NaN where nothing is retained.
    """
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    h = normalized_entropy(p) if entropy is None else np.asarray(entropy)
    rows = []
    for t in grid:
        keep = retained_mask(h, t)
        n = int(keep.sum())
        if n == 0:
            rows.append((t, 0.0, np.nan, np.nan, np.nan, np.nan, 0))
            continue
        ece = calibration.ece_top_label(y[keep], p[keep], n_bins)
        brier = rule_brier(y[keep], p[keep])
        acc = float(np.mean(p[keep].argmax(axis=1) == y[keep]))
        rows.append((t, n / h.size, acc, ece, brier, (ece + brier) / 2.0, n))
    cols = ("threshold", "coverage", "accuracy", "ece", "brier", "criterion", "n_retained")
    return {c: np.array([r[i] for r in rows], dtype=np.float64) for i, c in enumerate(cols)}


def select_threshold(
    y_val, probs_val, grid: Sequence[float], min_coverage: float = 0.8, n_bins: int = 10
) -> tuple[float, dict[str, np.ndarray]]:
    """Chooses the entropy threshold on validation data by the paper's rule.

    Minimises (ECE + Brier) / 2 over the retained predictions among grid thresholds whose
    coverage is at least `min_coverage`; ties go to the larger threshold (more coverage).

    Args:
        y_val: (N,) validation labels.
        probs_val: (N, K) validation probabilities.
        grid: candidate thresholds in [0, 1].
        min_coverage: minimum fraction of validation predictions retained.
        n_bins: ECE bins.

    Returns:
        (threshold, sweep) with the sweep from `threshold_sweep` on validation.

    Raises:
        ValueError: no grid threshold reaches the minimum coverage.
    """
    for t in grid:
        check_threshold(t, "threshold grid value")
    sweep = threshold_sweep(y_val, probs_val, grid, n_bins)
    ok = (sweep["coverage"] >= min_coverage) & np.isfinite(sweep["criterion"])
    if not np.any(ok):
        raise ValueError(
            f"no threshold in the grid (max {max(grid):.3g}) keeps {min_coverage:.0%} of the "
            f"validation predictions (best coverage {np.nanmax(sweep['coverage']):.1%}); "
            "extend the grid towards 1.0 or lower min_coverage"
        )
    crit = np.where(ok, sweep["criterion"], np.inf)
    best = np.flatnonzero(crit <= crit.min() + 1e-12)
    return float(sweep["threshold"][best[-1]]), sweep


def plot_grid(entropies: Sequence, grid: Sequence[float], chosen: float | None, n: int = 101):
    """Thresholds that resolve the curves where the data is, for the report's plots.

    A model whose entropies all lie in [0.96, 1] changes nothing between grid steps 0 and 0.95,
    so the plots sweep `n` evenly spaced thresholds across the range the entropies (and the
    chosen threshold) span, `n` quantiles of the entropies (where they crowd, e.g. against 1),
    and the grid values inside that range.

    Args:
        entropies: arrays of normalised entropies (one per split).
        grid: the selection grid.
        chosen: the threshold in use, or None.
        n: evenly spaced thresholds across the range.

    Returns:
        Sorted unique thresholds in [0, 1].
    """
    values = np.concatenate([np.asarray(e, dtype=np.float64).ravel() for e in entropies])
    ends = [values.min(), values.max()] + ([] if chosen is None else [chosen])
    lo, hi = float(min(ends)), float(max(ends))
    inside = [t for t in grid if lo <= t <= hi]
    quantiles = np.quantile(values, np.linspace(0.0, 1.0, n))
    return np.unique(np.clip(np.r_[np.linspace(lo, hi, n), quantiles, inside], 0.0, 1.0))


def risk_coverage(y_true, probs, entropy) -> tuple[np.ndarray, np.ndarray]:
    """The risk-coverage curve: error rate of the k least uncertain predictions against k / N.

    Args:
        y_true: (N,) class indices.
        probs: (N, K) probabilities (the prediction is the argmax).
        entropy: (N,) normalised entropy used to order the predictions.

    Returns:
        (coverage, risk), each (N,): coverage k / N and the error rate of those k predictions.
    """
    order = np.argsort(np.asarray(entropy), kind="stable")
    wrong = (np.asarray(probs).argmax(axis=1) != np.asarray(y_true))[order]
    k = np.arange(1, wrong.size + 1)
    return k / wrong.size, np.cumsum(wrong) / k


def decisions(probs, entropy, threshold: float | None, class_names: Sequence[str]) -> list[str]:
    """Per-image decision: the predicted class name, or "uncertain" above the threshold."""
    pred = np.asarray(probs).argmax(axis=1)
    names = [class_names[k] for k in pred]
    if threshold is None:
        return names
    keep = retained_mask(entropy, threshold)
    return [n if k else UNCERTAIN for n, k in zip(names, keep, strict=True)]
