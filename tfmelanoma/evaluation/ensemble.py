"""Ensembles of models (mean, weighted mean, majority vote) and sampling-based uncertainty.

Deep ensembles and Monte-Carlo dropout both give S probability vectors per image; the
predictive entropy of their mean is the total uncertainty, the mean per-sample entropy the
aleatoric part, and their difference (mutual information) the part due to model disagreement.
All three are normalised by log K like `normalized_entropy`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfmelanoma.evaluation.inference import as_predictor, predict_batches
from tfmelanoma.evaluation.probs import as_prob_matrix
from tfmelanoma.evaluation.uncertainty import normalized_entropy

METHODS = ("mean", "weighted", "vote")


def combine_probs(prob_list: Sequence, method: str = "mean", weights=None) -> np.ndarray:
    """Combines the probabilities of several models for the same images.

    Args:
        prob_list: S arrays of (N,), (N, 1) or (N, K) probabilities (same N and K).
        method: "mean" (arithmetic mean), "weighted" (sum_s w_s p_s / sum_s w_s) or "vote"
            (fraction of models whose argmax is each class; ties in the final argmax go to the
            lower class index).
        weights: S non-negative weights for "weighted".

    Returns:
        (N, K) probabilities.
    """
    if method not in METHODS:
        raise ValueError(f"unknown ensemble method {method!r}; expected one of {METHODS}")
    if not prob_list:
        raise ValueError("an ensemble needs at least one model's predictions")
    stack = np.stack(
        [as_prob_matrix(p, f"model {i} probabilities") for i, p in enumerate(prob_list)]
    )
    if method == "mean":
        return stack.mean(axis=0)
    if method == "weighted":
        w = np.asarray(weights, dtype=np.float64) if weights is not None else None
        if w is None or w.shape != (stack.shape[0],) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"weighted ensemble needs {stack.shape[0]} non-negative weights with a positive "
                f"sum, got {weights!r}"
            )
        return np.tensordot(w / w.sum(), stack, axes=1)
    votes = np.eye(stack.shape[2])[stack.argmax(axis=2)]  # (S, N, K) one-hot votes
    return votes.mean(axis=0)


def sample_uncertainty(samples) -> dict[str, np.ndarray]:
    """Uncertainty of S sampled predictions per image (deep ensemble or MC dropout).

    Args:
        samples: (S, N, K) probabilities.

    Returns:
        Dict of `mean_probs` (N, K), `entropy` = H(mean) / log K (total),
        `expected_entropy` = mean_s H(p_s) / log K (aleatoric) and `mutual_information` =
        entropy - expected_entropy (epistemic), each (N,).
    """
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 3:
        raise ValueError(f"samples must be (S, N, K), got shape {s.shape}")
    mean = s.mean(axis=0)
    total = normalized_entropy(mean)
    expected = np.mean([normalized_entropy(p) for p in s], axis=0)
    return {
        "mean_probs": mean,
        "entropy": total,
        "expected_entropy": expected,
        "mutual_information": np.clip(total - expected, 0.0, 1.0),
    }


def ensemble_predict(
    models: Sequence, images, method: str = "mean", weights=None, batch_size: int = 32
) -> np.ndarray:
    """Ensemble probabilities of Keras models (or `Predictor`s) on an image batch."""
    return combine_probs([as_predictor(m, batch_size)(images) for m in models], method, weights)


def deep_ensemble_uncertainty(
    models: Sequence, images, batch_size: int = 32
) -> dict[str, np.ndarray]:
    """`sample_uncertainty` over the predictions of independently trained models."""
    preds = [as_prob_matrix(as_predictor(m, batch_size)(images)) for m in models]
    return sample_uncertainty(np.stack(preds))


def mc_dropout_predict(
    model, images, n_samples: int = 20, seed: int | None = 0, batch_size: int = 32
) -> dict[str, np.ndarray]:
    """Monte-Carlo dropout: S stochastic forward passes with dropout active.

    The model is called with `training=True` so its Dropout layers sample masks; its
    BatchNormalization layers are frozen for the call (Keras 3 runs a non-trainable BN in
    inference mode) so they keep their moving statistics, and restored afterwards.

    Args:
        model: a Keras model with at least one Dropout-family layer.
        images: (N, H, W, 3) float32 in [0, 255].
        n_samples: number of passes S.
        seed: seeds the dropout layers' generators for reproducible masks (None: continue
            from their current state).
        batch_size: images per call.

    Returns:
        `sample_uncertainty` of the S passes, plus `samples` (S, N, K).

    Raises:
        ValueError: the model has no dropout layer (every pass would be identical).
    """
    import keras

    from tfmelanoma.models.registry import walk_layers

    layers = list(walk_layers(model))
    dropout_types = (
        keras.layers.Dropout,
        keras.layers.SpatialDropout2D,
        keras.layers.GaussianDropout,
    )
    dropouts = [layer for layer in layers if isinstance(layer, dropout_types)]
    if not dropouts:
        raise ValueError(f"model {model.name!r} has no Dropout layer; MC dropout needs one")
    if n_samples < 2:
        raise ValueError(f"MC dropout needs n_samples >= 2, got {n_samples}")
    bns = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    was = [layer.trainable for layer in bns]
    # Each dropout layer draws from its own SeedGenerator; seeding means setting those states
    # (and restoring them afterwards, so the model's own randomness is left as it was).
    gens = [g for g in (getattr(d, "seed_generator", None) for d in dropouts) if g is not None]
    states = [g.state.numpy().copy() for g in gens]
    try:
        for layer in bns:
            layer.trainable = False
        if seed is not None:
            for i, g in enumerate(gens):
                g.state.assign(np.array([seed * 1000 + i, 0], dtype=states[i].dtype))
        samples = np.stack(
            [
                as_prob_matrix(predict_batches(model, images, batch_size, training=True))
                for _ in range(n_samples)
            ]
        )
    finally:
        for layer, flag in zip(bns, was, strict=True):
            layer.trainable = flag
        for g, state in zip(gens, states, strict=True):
            g.state.assign(state)
    out = sample_uncertainty(samples)
    out["samples"] = samples
    return out
