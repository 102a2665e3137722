"""Validating predictions: one (N, K) probability matrix whatever shape the model gave."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-12
"""Clip for logs: keeps entropy and log loss finite at probabilities exactly 0 or 1."""

MELANOMA_NAMES = ("melanoma", "mel")


def as_prob_matrix(probs, name: str = "probs") -> np.ndarray:
    """Returns probabilities as a float64 (N, K) matrix, K >= 2.

    A (N,) vector or (N, 1) column is one sigmoid unit, P(melanoma), and becomes the two columns
    (1 - p, p), so index 1 is always melanoma in the binary case.

    Args:
        probs: (N,), (N, 1) or (N, K) probabilities.
        name: what to call the array in error messages.

    Returns:
        (N, K) float64 array.

    Raises:
        ValueError: empty, wrong rank, non-finite, outside [0, 1], or rows not summing to 1.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2:
        raise ValueError(f"{name} must have shape (N,), (N, 1) or (N, K); got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 predictions); the evaluated split has no examples")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if p.min() < -1e-6 or p.max() > 1 + 1e-6:
        raise ValueError(
            f"{name} must be probabilities in [0, 1], got values in [{p.min():.4g}, {p.max():.4g}]"
            " (pass softmax/sigmoid outputs, not logits)"
        )
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-3)
    if bad.size:
        raise ValueError(
            f"{name}: rows must sum to 1 (softmax outputs); row {bad[0]} sums to {sums[bad[0]]:.4g}"
        )
    return np.clip(p, 0.0, 1.0)


def as_labels(y_true, num_classes: int, name: str = "y_true") -> np.ndarray:
    """Returns integer labels as an int64 (N,) vector, checked against `num_classes`.

    Accepts class indices, or one-hot rows (N, K).
    """
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == num_classes and num_classes > 1:
        y = y.argmax(axis=1)
    elif y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be class indices of shape (N,), got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name} is empty (0 labels); the evaluated split has no examples")
    if not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError(
            f"{name} must hold integer class indices, got e.g. {y[np.mod(y, 1) != 0][0]}"
        )
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"{name} has label {y.max() if y.max() >= num_classes else y.min()} but the model "
            f"outputs {num_classes} classes (labels must be in 0..{num_classes - 1})"
        )
    return y


def check_class_names(class_names: Sequence[str], num_classes: int) -> list[str]:
    """Checks that the model's output width matches the dataset's class list."""
    names = [str(c) for c in class_names]
    if len(names) != num_classes:
        raise ValueError(
            f"the model outputs {num_classes} class probabilities but the dataset has "
            f"{len(names)} classes {names}; evaluate a model trained on these classes "
            "(a single sigmoid unit counts as 2 classes: non_melanoma, melanoma)"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class_names has duplicates: {names}")
    return names


def melanoma_index(class_names: Sequence[str]) -> int | None:
    """Index of the melanoma (positive) class: 1 for binary, else the class named melanoma/MEL."""
    names = [c.lower() for c in class_names]
    if len(names) == 2:
        return 1
    for candidate in MELANOMA_NAMES:
        if candidate in names:
            return names.index(candidate)
    return None
