"""Batched prediction with Keras models on NumPy image batches (float32 RGB in [0, 255])."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Predictor = Callable[[np.ndarray], np.ndarray]
"""A function from an image batch (B, H, W, 3) float32 [0, 255] to probabilities (B, K)."""


def model_output_probs(out) -> np.ndarray:
    """The diagnosis probabilities of a model output (multi-task dicts: the "diagnosis" head)."""
    if isinstance(out, dict):
        if "diagnosis" not in out:
            raise ValueError(f"model returns outputs {sorted(out)}; expected a 'diagnosis' output")
        out = out["diagnosis"]
    elif isinstance(out, list | tuple):
        out = out[0]
    p = np.asarray(out, dtype=np.float64)
    return p.reshape(p.shape[0], -1)


def predict_batches(model, images, batch_size: int = 32, training: bool = False) -> np.ndarray:
    """Runs `model(x, training=...)` over `images` in batches and stacks the probabilities.

    Calls the model directly rather than `model.predict` so small batches do not pay for
    building a `tf.data` pipeline each call (TTA and MC dropout call this many times).

    Args:
        model: a Keras model returning probabilities (or a callable of the same signature).
        images: (N, H, W, 3) float32 in [0, 255].
        batch_size: images per call.
        training: forwarded to the model (MC dropout needs True).

    Returns:
        (N, K) float64 probabilities; a single sigmoid unit gives (N, 1).
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3) RGB, got shape {x.shape}")
    outs = [
        model_output_probs(model(x[i : i + batch_size], training=training))
        for i in range(0, x.shape[0], batch_size)
    ]
    if not outs:
        raise ValueError("no images to predict (empty batch)")
    return np.concatenate(outs)


def as_predictor(model, batch_size: int = 32) -> Predictor:
    """Wraps a Keras model (or a `Predictor`) as a `Predictor`."""
    import keras

    if isinstance(model, keras.Model):
        return lambda images: predict_batches(model, images, batch_size)
    if callable(model):
        return model
    raise TypeError(f"expected a keras.Model or a callable, got {type(model).__name__}")
