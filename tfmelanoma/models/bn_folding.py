"""Fold BatchNormalization into the preceding convolution / dense layer before export.

Same idea as brainchop's `py2tfjs/blendbatchnorm.py`: at inference BatchNorm is an affine map per
channel, so `BN(conv(x)) = conv'(x)` with `W' = W * g / sqrt(v + eps)` and
`b' = (b - m) * g / sqrt(v + eps) + beta`. The exported model has fewer layers and weights
(no moving statistics) and runs faster in TF.js. Keras has no such utility, hence this file.
"""

from __future__ import annotations

import keras
import numpy as np

_FOLDABLE = (keras.layers.Conv2D, keras.layers.Dense)


def _foldable_pairs(model: keras.Model) -> dict[str, str]:
    """Maps BatchNorm layer name -> name of the Conv2D/Dense feeding only it."""
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
            continue
        if layer.axis not in (-1, [-1], [len(layer.input.shape) - 1]):
            continue
        parent = layer.input._keras_history.operation
        if not isinstance(parent, _FOLDABLE) or isinstance(parent, keras.layers.DepthwiseConv2D):
            continue
        # Folding is only valid when the conv's output goes to this BatchNorm alone.
        consumers = [n for n in parent._outbound_nodes]
        if len(consumers) == 1 and len(parent._inbound_nodes) == 1:
            pairs[layer.name] = parent.name
    return pairs


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """Returns a copy of a functional model with every Conv2D/Dense → BatchNorm pair merged.

    Args:
        model: a functional Keras model (e.g. `create_model("meshnet")`), trained.

    Returns:
        A new model without the folded BatchNorm layers; other layers keep names and weights.
        Its inference outputs equal the original's up to float rounding (~1e-6 relative).

    Raises:
        ValueError: `model` is not a functional model.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_operations") or not model.inputs:
        raise ValueError(
            f"fold_batchnorm needs a functional keras.Model, got {type(model).__name__}"
        )
    pairs = _foldable_pairs(model)
    folded_parents = set(pairs.values())

    def clone(layer):
        config = layer.get_config()
        if layer.name in folded_parents:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):
        if layer.name in pairs:
            return args[0]  # the BatchNorm disappears; its parent now carries the affine map
        return layer(*args, **kwargs)

    folded = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in folded.layers:
        if layer.name in pairs:
            continue
        source = model.get_layer(layer.name)
        if layer.name in folded_parents:
            bn = model.get_layer(next(b for b, p in pairs.items() if p == layer.name))
            layer.set_weights(_fold(source, bn))
        elif source.weights:
            layer.set_weights(source.get_weights())
    return folded


def _fold(parent: keras.layers.Layer, bn: keras.layers.BatchNormalization) -> list[np.ndarray]:
    """Folded [kernel, bias] of `parent` followed by `bn` (float64 arithmetic, cast back)."""
    kernel = np.asarray(parent.kernel, dtype=np.float64)
    bias = (
        np.asarray(parent.bias, dtype=np.float64) if parent.use_bias else np.zeros(kernel.shape[-1])
    )
    channels = kernel.shape[-1]
    gamma = np.asarray(bn.gamma, dtype=np.float64) if bn.scale else np.ones(channels)
    beta = np.asarray(bn.beta, dtype=np.float64) if bn.center else np.zeros(channels)
    mean = np.asarray(bn.moving_mean, dtype=np.float64)
    var = np.asarray(bn.moving_variance, dtype=np.float64)
    scale = gamma / np.sqrt(var + bn.epsilon)
    dtype = np.asarray(parent.kernel).dtype
    return [(kernel * scale).astype(dtype), ((bias - mean) * scale + beta).astype(dtype)]
