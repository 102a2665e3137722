"""Calibration: ECE, Brier score, log loss, reliability bins, and post-hoc calibrators.

Two ECE forms, named so they are not confused:
- `ece_top_label`: the paper's eq. 2 (Guo et al. 2017): bins over the confidence of the
  predicted class, acc(B) = fraction of correct predictions in the bin.
- `ece_melanoma`: bins over P(melanoma), acc(B) = fraction of melanomas in the bin; the
  calibration of the number shown to a user as a melanoma risk.
Bins are M equal-width intervals (lo, hi] of [0, 1]; a value of exactly 0 falls in the first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from tfmelanoma.evaluation.probs import EPS

logger = logging.getLogger(__name__)


def _bin_index(values: np.ndarray, n_bins: int) -> np.ndarray:
    return np.clip(np.ceil(values * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def reliability_bins(confidence, outcome, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Per-bin counts, mean confidence and observed frequency for ECE and reliability diagrams.

    Args:
        confidence: (N,) predicted probabilities in [0, 1].
        outcome: (N,) 1 where the predicted event happened (correct / melanoma), else 0.
        n_bins: number of equal-width bins.

    Returns:
        Dict of `count`, `confidence`, `accuracy` (NaN for empty bins) and `edges` (M + 1).
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(outcome, dtype=np.float64)
    idx = _bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        acc = np.bincount(idx, weights=hit, minlength=n_bins) / count
    return {
        "count": count,
        "confidence": mean_conf,
        "accuracy": acc,
        "edges": np.linspace(0.0, 1.0, n_bins + 1),
    }


def _ece(confidence, outcome, n_bins: int) -> float:
    conf = np.asarray(confidence, dtype=np.float64)
    if conf.size == 0:
        return float("nan")
    b = reliability_bins(conf, outcome, n_bins)
    filled = b["count"] > 0
    gaps = np.abs(b["accuracy"][filled] - b["confidence"][filled])
    return float(np.sum(b["count"][filled] / conf.size * gaps))


def ece_top_label(y_true, probs, n_bins: int = 10) -> float:
    """Top-label expected calibration error (the paper's eq. 2).

    ECE = sum_m |B_m| / n * |acc(B_m) - conf(B_m)|, binning the max probability; acc(B_m) is the
    fraction of predictions in B_m whose argmax equals the label.

    Args:
        y_true: (N,) class indices.
        probs: (N, K) probabilities.
        n_bins: number of equal-width bins.
    """
    p = np.asarray(probs, dtype=np.float64)
    correct = p.argmax(axis=1) == np.asarray(y_true)
    return _ece(p.max(axis=1), correct, n_bins)


def ece_melanoma(y_true_positive, p_positive, n_bins: int = 10) -> float:
    """Melanoma-probability ECE: sum_m |B_m| / n * |frac_melanoma(B_m) - mean P(melanoma)(B_m)|.

    Args:
        y_true_positive: (N,) 1 = melanoma.
        p_positive: (N,) predicted P(melanoma).
        n_bins: number of equal-width bins.
    """
    return _ece(p_positive, np.asarray(y_true_positive, dtype=np.float64), n_bins)


def brier_binary(y_true_positive, p_positive) -> float:
    """Brier score of the positive class (the paper's eq. 3): mean (p_i - y_i)^2, in [0, 1]."""
    p = np.asarray(p_positive, dtype=np.float64)
    y = np.asarray(y_true_positive, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if p.size else float("nan")


def brier_multiclass(y_true, probs) -> float:
    """Brier's original multi-class score: mean_i sum_k (p_ik - 1[y_i = k])^2, in [0, 2].

    For two classes it is exactly twice `brier_binary`.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[0] == 0:
        return float("nan")
    onehot = np.eye(p.shape[1])[np.asarray(y_true)]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def log_loss(y_true, probs) -> float:
    """Mean negative log-likelihood -mean log p_{i, y_i}, probabilities clipped to [1e-12, 1]."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[0] == 0:
        return float("nan")
    picked = p[np.arange(p.shape[0]), np.asarray(y_true)]
    return float(-np.mean(np.log(np.clip(picked, EPS, 1.0))))


# --------------------------------------------------------------------------- post-hoc calibrators


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """softmax(log(p) / T): temperature scaling with log-probabilities standing in for logits.

    The models return probabilities, not logits; log p differs from the logits only by a
    per-row constant, which softmax ignores, so this equals scaling the true logits by 1/T.
    For a sigmoid model (columns 1 - p, p) it is sigmoid(logit(p) / T).
    """
    z = np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


TEMPERATURE_BOUNDS = (0.05, 20.0)
"""The range `fit_temperature` searches first (every sensible model lands inside it)."""
TEMPERATURE_WIDEST = (1e-3, 1e3)
"""Where the search widens to when the fit stops at a bound of `TEMPERATURE_BOUNDS`. A fit within
10x of a bound of this range means the probabilities carry (almost) no signal: T -> infinity
makes every prediction uniform, T -> 0 every prediction certain (the log loss is then so flat
that the search stops anywhere up there)."""


def _at_bound(t: float, bounds: tuple[float, float], factor: float = 1.001) -> bool:
    return t <= bounds[0] * factor or t >= bounds[1] / factor


def fit_temperature(y_true, probs, *, with_info: bool = False):
    """The temperature T > 0 minimising validation log loss of `apply_temperature(probs, T)`.

    One scalar, so a bounded 1-D search over log T is exact enough and needs no gradient code:
    first in `TEMPERATURE_BOUNDS`; a result at one of its bounds is searched again in
    `TEMPERATURE_WIDEST` (a bound is not an optimum).

    Args:
        y_true: (N,) labels.
        probs: (N, K) probabilities.
        with_info: also return whether the fit stopped at a bound of the widest range.

    Returns:
        T, or (T, at_bound) with `with_info`.
    """
    y = np.asarray(y_true)

    def nll(log_t: float) -> float:
        return log_loss(y, apply_temperature(probs, np.exp(log_t)))

    def search(bounds):
        low, high = np.log(bounds[0]), np.log(bounds[1])
        return float(np.exp(minimize_scalar(nll, bounds=(low, high), method="bounded").x))

    t = search(TEMPERATURE_BOUNDS)
    if _at_bound(t, TEMPERATURE_BOUNDS):
        t = search(TEMPERATURE_WIDEST)
    at_bound = _at_bound(t, TEMPERATURE_WIDEST, factor=10.0)
    if at_bound:
        logger.warning(
            "temperature scaling stopped near its widest search bound (T = %.3g, range %g-%g): the "
            "validation probabilities carry almost no signal; calibrated outputs are %s",
            t, *TEMPERATURE_WIDEST, "near uniform" if t > 1 else "near 0/1",
        )  # fmt: skip
    return (t, at_bound) if with_info else t


@dataclass
class Calibrator:
    """A fitted post-hoc calibrator: `apply(probs) -> probs` on (N, K) matrices.

    Attributes:
        method: "temperature", "platt" or "isotonic".
        params: JSON-ready fitted parameters (for metrics.json).
    """

    method: str
    params: dict = field(default_factory=dict)
    _model: object = None

    def apply(self, probs) -> np.ndarray:
        p = np.asarray(probs, dtype=np.float64)
        if self.method == "temperature":
            return apply_temperature(p, self.params["temperature"])
        if p.shape[1] != 2:
            raise ValueError(f"{self.method} calibration is binary-only; got {p.shape[1]} classes")
        if self.method == "platt":
            pos = self._model.predict_proba(_logit(p[:, 1])[:, None])[:, 1]
        else:
            pos = self._model.predict(p[:, 1])
        pos = np.clip(pos, 0.0, 1.0)
        return np.stack([1.0 - pos, pos], axis=1)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def fit_calibrator(method: str, y_true, probs) -> Calibrator:
    """Fits a calibrator on validation predictions.

    Args:
        method: "temperature" (any K), "platt" (logistic regression on logit P(melanoma)) or
            "isotonic" (monotone step function of P(melanoma)); the last two via scikit-learn and
            binary-only.
        y_true: (N,) validation labels.
        probs: (N, K) validation probabilities.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true)
    if method == "temperature":
        t, at_bound = fit_temperature(y, p, with_info=True)
        params = {"temperature": t}
        if at_bound:
            params["at_search_bound"] = True
        return Calibrator("temperature", params)
    if p.shape[1] != 2:
        raise ValueError(f"{method} calibration is binary-only; got {p.shape[1]} classes")
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        if np.unique(y).size < 2:
            raise ValueError("Platt scaling needs both classes in the validation labels")
        model = LogisticRegression(C=1e6).fit(_logit(p[:, 1])[:, None], y)
        params = {"slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])}
        return Calibrator("platt", params, model)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p[:, 1], y)
        return Calibrator("isotonic", {"n_steps": int(len(model.X_thresholds_))}, model)
    raise ValueError(f"unknown calibration method {method!r}; known: temperature, platt, isotonic")
