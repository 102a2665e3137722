"""Classification metrics as small pure functions: arrays in, numbers out.

Binary metrics treat melanoma as the positive class (`y == 1` in the binary label order). Macro
forms average the one-vs-rest binary value over every class, each class weighted equally.
A metric that is undefined on the given data (e.g. precision with no positive predictions,
AUC with one class present) is NaN, never a silent 0; the report prints it as "n/a".
scikit-learn is the reference these are tested against; they are written out here so the
bootstrap can call them thousands of times without sklearn's per-call validation cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _div(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def confusion_counts(y_true, y_pred) -> tuple[int, int, int, int]:
    """Counts (TP, FP, TN, FN) of binary labels, 1 = positive (melanoma)."""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    return int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(~t & ~p)), int(np.sum(t & ~p))


def precision(y_true, y_pred) -> float:
    """Precision (PPV) = TP / (TP + FP)."""
    tp, fp, _, _ = confusion_counts(y_true, y_pred)
    return _div(tp, tp + fp)


def sensitivity(y_true, y_pred) -> float:
    """Sensitivity (recall, TPR) = TP / (TP + FN)."""
    tp, _, _, fn = confusion_counts(y_true, y_pred)
    return _div(tp, tp + fn)


def specificity(y_true, y_pred) -> float:
    """Specificity (TNR) = TN / (TN + FP)."""
    _, fp, tn, _ = confusion_counts(y_true, y_pred)
    return _div(tn, tn + fp)


def f1(y_true, y_pred) -> float:
    """F1 = 2 TP / (2 TP + FP + FN), the harmonic mean of precision and sensitivity."""
    tp, fp, _, fn = confusion_counts(y_true, y_pred)
    return _div(2 * tp, 2 * tp + fp + fn)


def accuracy(y_true, y_pred) -> float:
    """Accuracy = mean(y_pred == y_true) (any number of classes)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(t == p)) if t.size else float("nan")


def balanced_accuracy(y_true, y_pred) -> float:
    """Balanced accuracy = mean over the classes present in y_true of per-class recall.

    For binary labels this is (sensitivity + specificity) / 2.
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(t)
    if classes.size == 0:
        return float("nan")
    return float(np.mean([np.mean(p[t == c] == c) for c in classes]))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (scipy's rankdata "average", ~5x faster
    here, which matters inside the bootstrap)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (upper - (counts - 1) / 2.0)[inverse]


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve, via the Mann-Whitney U statistic.

    AUC = (sum of the ranks of positive scores - P (P + 1) / 2) / (P N), ranks averaged over
    ties, P / N the numbers of positives / negatives. NaN when only one class is present.
    """
    t = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y_true, scores) -> float:
    """Average precision = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds.

    P_n / R_n are precision / recall when predicting positive for score >= the n-th highest
    distinct score (scikit-learn's definition, no interpolation). NaN without positives.
    """
    t = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(t.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(t)[last_of_tie]
    predicted = last_of_tie + 1
    recall = tp / n_pos
    prec = tp / predicted
    return float(np.sum(np.diff(np.r_[0.0, recall]) * prec))


def binary_metrics(y_true, p_positive, y_pred) -> dict[str, float]:
    """Every binary metric for melanoma as the positive class.

    Args:
        y_true: (N,) 1 = melanoma, 0 = not.
        p_positive: (N,) predicted probability of melanoma (ranks AUC and average precision).
        y_pred: (N,) predicted 1/0.

    Returns:
        Dict of precision, sensitivity, specificity, f1, accuracy, balanced_accuracy, auc_roc,
        average_precision.
    """
    tp, fp, tn, fn = confusion_counts(y_true, y_pred)  # once: the bootstrap calls this a lot
    sens, spec = _div(tp, tp + fn), _div(tn, tn + fp)
    present = [v for v in (sens, spec) if np.isfinite(v)]
    return {
        "precision": _div(tp, tp + fp),
        "sensitivity": sens,
        "specificity": spec,
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "accuracy": _div(tp + tn, tp + fp + tn + fn),
        "balanced_accuracy": float(np.mean(present)) if present else float("nan"),
        "auc_roc": roc_auc(y_true, p_positive),
        "average_precision": average_precision(y_true, p_positive),
    }


def threshold_for_sensitivity(y_true, p_positive, target: float) -> float:
    """The largest cut-off t whose rule "positive when p >= t" reaches `target` sensitivity.

    t is the k-th highest positive score, k = ceil(target * positives): every larger cut-off
    misses more than (1 - target) of the positives, so t keeps the most specificity.

    Args:
        y_true: (N,) 1 = melanoma, 0 = not (validation labels: the cut-off is chosen there).
        p_positive: (N,) predicted probability of melanoma.
        target: wanted sensitivity in (0, 1].

    Returns:
        The cut-off, or NaN when `y_true` has no positive.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target!r}")
    t = np.asarray(y_true).astype(bool)
    positives = np.sort(np.asarray(p_positive, dtype=np.float64)[t])[::-1]
    if positives.size == 0:
        return float("nan")
    k = max(1, int(np.ceil(target * positives.size - 1e-9)))  # 1e-9: 0.9 * 10 is 9.000000001
    return float(positives[k - 1])


def macro_metrics(y_true, probs, y_pred) -> dict[str, float]:
    """Multi-class metrics: macro averages of the one-vs-rest binary values over all K classes.

    Classes absent from y_true give NaN recall / AUC and are left out of those macro means
    (scikit-learn warns and does the same for recall; it refuses AUC).

    Args:
        y_true: (N,) class indices.
        probs: (N, K) probabilities.
        y_pred: (N,) predicted class indices.
    """
    y_true, y_pred, probs = np.asarray(y_true), np.asarray(y_pred), np.asarray(probs)
    per_class = [
        (
            precision(y_true == k, y_pred == k) if np.any(y_pred == k) else 0.0,
            sensitivity(y_true == k, y_pred == k),
            f1(y_true == k, y_pred == k),
            roc_auc(y_true == k, probs[:, k]),
        )
        for k in range(probs.shape[1])
    ]
    prec, rec, f1s, aucs = (np.array(col, dtype=np.float64) for col in zip(*per_class, strict=True))

    def _mean(a: np.ndarray) -> float:
        return float(np.nanmean(a)) if np.any(np.isfinite(a)) else float("nan")

    return {
        "accuracy": accuracy(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "macro_precision": float(np.mean(prec)),
        "macro_sensitivity": _mean(rec),
        "macro_f1": float(np.mean(f1s)),
        "macro_auc_roc": _mean(aucs),
    }


def age_mae(true_ages, predicted_years) -> dict[str, float | int]:
    """Mean absolute error in years over the images with a known age (age >= 0).

    MAE = mean over {i : age_i >= 0} of |predicted_i - age_i|; NaN when no age is known.

    Returns:
        {"age_mae_years": MAE, "n_age_known": how many ages were known}.
    """
    ages = np.asarray(true_ages, dtype=np.float64).reshape(-1)
    pred = np.asarray(predicted_years, dtype=np.float64).reshape(-1)
    known = ages >= 0
    mae = float(np.mean(np.abs(pred[known] - ages[known]))) if known.any() else float("nan")
    return {"age_mae_years": mae, "n_age_known": int(known.sum())}


def age_bin_accuracy(true_ages, bin_probs, edges: Sequence[float]) -> dict[str, float | int]:
    """Share of the images with a known age whose most probable age bin is their own.

    The bin of an age is `np.digitize(age, edges)` (`edges[i-1] <= age < edges[i]`).

    Returns:
        {"age_accuracy": accuracy (NaN when no age is known), "n_age_known": count}.
    """
    ages = np.asarray(true_ages, dtype=np.float64).reshape(-1)
    probs = np.asarray(bin_probs, dtype=np.float64)
    known = ages >= 0
    right = np.argmax(probs[known], axis=-1) == np.digitize(ages[known], list(edges))
    return {
        "age_accuracy": float(np.mean(right)) if known.any() else float("nan"),
        "n_age_known": int(known.sum()),
    }


def misdiagnoses(y_true, y_pred, image_ids: Sequence[str]) -> dict[str, list[str]]:
    """False positives and false negatives (melanoma positive), listed by image id."""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    ids = np.asarray(image_ids, dtype=object)
    return {
        "false_positive_ids": [str(i) for i in ids[~t & p]],
        "false_negative_ids": [str(i) for i in ids[t & ~p]],
    }


def bootstrap_intervals(
    compute: Callable[[np.ndarray], dict[str, float]],
    n_items: int,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile bootstrap confidence intervals of every metric `compute` returns.

    Each resample draws `n_items` indices with replacement (seeded generator); resamples where
    a metric is undefined (NaN, e.g. no positives drawn) are dropped for that metric.

    Args:
        compute: function of an index array returning {metric name: value}.
        n_items: number of examples.
        n_boot: number of resamples.
        seed: seed of `numpy.random.default_rng`.
        level: interval coverage, e.g. 0.95 for the 2.5th..97.5th percentiles.

    Returns:
        {metric name: [low, high]}, [NaN, NaN] where no resample defined the metric.
    """
    if n_boot <= 0 or n_items == 0:
        return {}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_boot):
        idx = rng.integers(0, n_items, size=n_items)
        for name, value in compute(idx).items():
            samples.setdefault(name, []).append(value)
    alpha = (1.0 - level) / 2.0
    out = {}
    for name, values in samples.items():
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        out[name] = (
            [float(np.quantile(v, alpha)), float(np.quantile(v, 1.0 - alpha))]
            if v.size
            else [float("nan"), float("nan")]
        )
    return out
