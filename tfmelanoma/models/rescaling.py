"""Inverse-class-frequency rescaling of predicted probabilities (the multi-class paper).

`rescale_probabilities` works on NumPy arrays after prediction; `with_class_rescaling` appends
the equivalent `ClassFrequencyRescaling` layer to a trained model so the exported / served model
outputs rescaled probabilities directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tfmelanoma.models.layers import ClassFrequencyRescaling


def class_frequencies(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Relative frequency of each class in integer `labels`.

    Raises:
        ValueError: a class never occurs (its inverse frequency is undefined) or a label is
            outside [0, num_classes).
    """
    labels = np.asarray(labels).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]"
        )
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    if np.any(counts == 0):
        raise ValueError(
            f"classes {np.flatnonzero(counts == 0).tolist()} never occur in the labels"
        )
    return counts / counts.sum()


def rescale_probabilities(probs: np.ndarray, frequencies: Sequence[float]) -> np.ndarray:
    """`p'_k = (p_k / f_k) / sum_j (p_j / f_j)` for (N, K) probabilities.

    Args:
        probs: (N, K) softmax probabilities, or (N,) / (N, 1) sigmoid P(class 1).
        frequencies: per-class training frequencies or counts (K, or 2 for sigmoid input).

    Returns:
        Rescaled probabilities of the same shape.
    """
    probs = np.asarray(probs, dtype=np.float64)
    freqs = np.asarray(frequencies, dtype=np.float64)
    if freqs.ndim != 1 or freqs.size < 2 or np.any(freqs <= 0):
        raise ValueError(f"frequencies must be >= 2 positive numbers, got {frequencies!r}")
    freqs = freqs / freqs.sum()
    if probs.ndim == 1 or probs.shape[-1] == 1:
        if freqs.size != 2:
            raise ValueError(f"sigmoid probabilities need 2 frequencies, got {freqs.size}")
        positive, negative = probs / freqs[1], (1.0 - probs) / freqs[0]
        return positive / (positive + negative)
    if probs.shape[-1] != freqs.size:
        raise ValueError(
            f"probabilities have {probs.shape[-1]} classes but {freqs.size} frequencies were given"
        )
    weighted = probs / freqs
    return weighted / weighted.sum(axis=-1, keepdims=True)


def with_class_rescaling(model: keras.Model, frequencies: Sequence[float]) -> keras.Model:
    """A new model = `model` followed by `ClassFrequencyRescaling(frequencies)` (shared weights).

    For a multi-task model only the "diagnosis" output is rescaled.
    """
    outputs = model.output
    layer = ClassFrequencyRescaling(list(map(float, frequencies)), name="class_rescaling")
    if isinstance(outputs, dict):
        outputs = {**outputs, "diagnosis": layer(outputs["diagnosis"])}
    else:
        outputs = layer(outputs)
    return keras.Model(model.input, outputs, name=f"{model.name}_rescaled")
