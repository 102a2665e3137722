"""Countering class imbalance: class weights (inverse frequency, effective number) and oversampling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

WEIGHT_METHODS = ("inverse", "effective")


def class_weights(
    labels: Sequence[int] | np.ndarray,
    *,
    method: str = "inverse",
    beta: float = 0.999,
    num_classes: int | None = None,
) -> dict[int, float]:
    """Per-class loss weights, as Keras `class_weight` expects.

    - ``inverse``: ``w_c = N / (K * n_c)`` (scikit-learn's "balanced"; the multi-class paper's
      inverse-frequency rescaling). A perfectly balanced set gets 1.0 everywhere.
    - ``effective``: effective number of samples (Cui et al., CVPR 2019):
      ``w_c = (1 - beta) / (1 - beta ** n_c)``, scaled so the weights sum to K. ``beta -> 0`` gives
      equal weights, ``beta -> 1`` approaches inverse frequency.

    Args:
        labels: integer class per example.
        method: "inverse" or "effective".
        beta: effective-number hyper-parameter in [0, 1).
        num_classes: K; defaults to max(label) + 1. Classes absent from `labels` get weight 0.

    Returns:
        {class index: weight}.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise ValueError("class_weights: no labels given")
    k = int(num_classes if num_classes is not None else labels.max() + 1)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    present = counts > 0
    weights = np.zeros(k)
    if method == "inverse":
        weights[present] = labels.size / (present.sum() * counts[present])
    elif method == "effective":
        if not 0 <= beta < 1:
            raise ValueError(f"class_weights: beta must be in [0, 1), got {beta}")
        raw = (1.0 - beta) / (1.0 - np.power(beta, counts[present]))
        weights[present] = raw * present.sum() / raw.sum()
    else:
        raise ValueError(f"class_weights: method {method!r} not in {WEIGHT_METHODS}")
    return {i: float(w) for i, w in enumerate(weights)}


def oversample(frame: pd.DataFrame, *, column: str = "label", seed: int = 0) -> pd.DataFrame:
    """Repeats rows of the smaller classes (drawn with replacement) up to the largest class.

    Every original row is kept once; only extra copies are random, so nothing is lost. The result
    is shuffled deterministically for `seed`.

    Args:
        frame: index frame.
        column: class column.
        seed: random seed.

    Returns:
        A new frame (index reset) whose classes are equally frequent.
    """
    if frame.empty:
        return frame.copy()
    rng = np.random.default_rng(seed)
    counts = frame[column].value_counts()
    target = int(counts.max())
    parts = [frame]
    for cls, n in counts.sort_index().items():
        if n < target:
            rows = np.flatnonzero(frame[column].to_numpy() == cls)
            parts.append(frame.iloc[rng.choice(rows, size=target - n, replace=True)])
    out = pd.concat(parts, ignore_index=True)
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)
