"""Grad-CAM and Grad-CAM++ heatmaps for any Keras classifier, by the name of a conv layer.

The target layer may sit inside a nested sub-model (e.g. a Keras Applications backbone):
instead of rebuilding the graph, the layer's `call` is wrapped for the duration of one forward
pass so its output is watched by the gradient tape. TensorFlow backend only (GradientTape).

The class score differentiated is log p_c, not p_c: the models return probabilities, and the
gradient of a saturated softmax / sigmoid output vanishes, while log p_c = z_c - logsumexp(z)
keeps the logit's gradient (the quantity Grad-CAM was defined on) up to the normaliser's term.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfmelanoma.evaluation.probs import EPS


def find_layer(model, name: str):
    """The layer called `name` in `model` or any nested sub-model; ValueError listing candidates."""
    stack = [model]
    convs = []
    while stack:
        m = stack.pop()
        for layer in m.layers:
            if layer.name == name:
                return layer
            if hasattr(layer, "layers"):
                stack.append(layer)
            elif "conv" in type(layer).__name__.lower():
                convs.append(layer.name)
    raise ValueError(
        f"model {model.name!r} has no layer named {name!r}; its conv layers are: "
        f"{', '.join(convs[-8:]) or 'none'}"
    )


def resolve_layer_name(model, layer_name: str | None = None, model_name: str | None = None) -> str:
    """The Grad-CAM layer: `layer_name`, else the registry's `ModelInfo.last_conv_layer`.

    Args:
        model: the Keras model (to check the layer exists).
        layer_name: explicit layer name (wins).
        model_name: registry name; its `last_conv_layer` is used when no name is given.
    """
    if not layer_name and model_name:
        from tfmelanoma.models import get_model_info

        layer_name = get_model_info(model_name).last_conv_layer
    if not layer_name:
        raise ValueError(
            "no Grad-CAM layer: pass layer_name=... or a registry model_name with last_conv_layer"
        )
    find_layer(model, layer_name)
    return layer_name


def _watch_layer_output(layer, tape, store: list):
    original = layer.call

    def call(*args, **kwargs):
        out = original(*args, **kwargs)
        tape.watch(out)
        store.append(out)
        return out

    object.__setattr__(layer, "call", call)  # bypass Keras attribute tracking; undone below
    return original


def _activations_and_grads(model, images, layer_name: str, class_index):
    import tensorflow as tf

    from tfmelanoma.evaluation.inference import model_output_probs

    layer = find_layer(model, layer_name)
    x = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    store: list = []
    with tf.GradientTape() as tape:
        _watch_layer_output(layer, tape, store)
        try:
            out = model(x, training=False)
        finally:
            del layer.__dict__["call"]
        if isinstance(out, dict):
            out = out["diagnosis"]
        probs = tf.reshape(tf.cast(out, tf.float32), (tf.shape(x)[0], -1))
        if probs.shape[1] == 1:  # one sigmoid unit: columns (1 - p, p)
            probs = tf.concat([1.0 - probs, probs], axis=1)
        pred = np.argmax(model_output_probs(probs), axis=1)
        target = (
            pred if class_index is None else np.broadcast_to(np.asarray(class_index), pred.shape)
        )
        picked = tf.gather(probs, tf.constant(target, tf.int32), axis=1, batch_dims=1)
        score = tf.math.log(tf.maximum(picked, EPS))
    if len(store) != 1:
        raise ValueError(
            f"layer {layer_name!r} ran {len(store)} times in one forward pass; expected once"
        )
    acts = store[0]
    if len(acts.shape) != 4:
        raise ValueError(
            f"layer {layer_name!r} outputs shape {acts.shape}; Grad-CAM needs (B, H, W, C)"
        )
    grads = tape.gradient(score, acts)
    return (
        acts.numpy().astype(np.float64),
        grads.numpy().astype(np.float64),
        target,
        model_output_probs(probs),
    )


def grad_cam(
    model,
    images,
    layer_name: str,
    class_index: int | Sequence[int] | None = None,
    plus: bool = False,
) -> dict[str, np.ndarray]:
    """Grad-CAM (Selvaraju et al. 2017) or Grad-CAM++ (Chattopadhay et al. 2018) heatmaps.

    Grad-CAM: w_c = mean_ij dS/dA_ij, map = ReLU(sum_c w_c A_c).
    Grad-CAM++: w_c = sum_ij alpha_ij ReLU(dS/dA_ij), with
    alpha = g^2 / (2 g^2 + sum_ij A_ij g^3) (the closed form for an exponential score).
    Maps are upsampled bilinearly to the input size and scaled to [0, 1] per image.

    Args:
        model: Keras classifier taking float32 [0, 255] images.
        images: (B, H, W, 3) float32 in [0, 255].
        layer_name: conv layer to explain (e.g. `ModelInfo.last_conv_layer`).
        class_index: class to explain per image (None: the predicted class).
        plus: Grad-CAM++ instead of Grad-CAM.

    Returns:
        Dict of `heatmaps` (B, H, W) in [0, 1], `class_index` (B,), `probs` (B, K).
    """
    import tensorflow as tf

    acts, grads, target, probs = _activations_and_grads(model, images, layer_name, class_index)
    if plus:
        g2, g3 = grads**2, grads**3
        denom = 2.0 * g2 + acts.sum(axis=(1, 2), keepdims=True) * g3
        alpha = np.where(grads != 0.0, g2 / np.where(denom != 0.0, denom, 1.0), 0.0)
        weights = np.sum(alpha * np.maximum(grads, 0.0), axis=(1, 2))
    else:
        weights = grads.mean(axis=(1, 2))
    cam = np.maximum(np.einsum("bhwc,bc->bhw", acts, weights), 0.0)
    size = np.asarray(images).shape[1:3]
    cam = tf.image.resize(cam[..., None], size, method="bilinear").numpy()[..., 0]
    peak = cam.max(axis=(1, 2), keepdims=True)
    cam = np.where(peak > 0, cam / np.where(peak > 0, peak, 1.0), 0.0)
    return {"heatmaps": cam, "class_index": np.asarray(target), "probs": probs}


def overlay(image, heatmap, alpha: float = 0.45) -> np.ndarray:
    """Blends a [0, 1] heatmap (jet colour map) over an RGB image; returns uint8 (H, W, 3)."""
    from matplotlib import colormaps

    img = np.clip(np.asarray(image, dtype=np.float64), 0, 255) / 255.0
    colour = colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3]
    return np.round(255 * ((1 - alpha) * img + alpha * colour)).astype(np.uint8)


def save_overlays(
    images,
    result: dict,
    out_dir,
    image_ids: Sequence[str],
    class_names: Sequence[str],
    labels=None,
    prefix: str = "gradcam",
) -> list[Path]:
    """Writes one PNG per image: the image, the heatmap overlay, and a caption.

    Args:
        images: (B, H, W, 3) images in [0, 255] that `result` explains.
        result: output of `grad_cam`.
        out_dir: folder to write into (created).
        image_ids: B ids (file names are `<prefix>_<id>.png`).
        class_names: names for the captions.
        labels: optional B true labels for the captions.
        prefix: file-name prefix.

    Returns:
        The written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image_id in enumerate(image_ids):
        k = int(result["class_index"][i])
        fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.5))
        axes[0].imshow(np.clip(np.asarray(images[i]), 0, 255).astype(np.uint8))
        truth = "" if labels is None else f"label {class_names[int(labels[i])]}"
        axes[0].set_title(f"{image_id}\n{truth}", fontsize=9)
        axes[1].imshow(overlay(images[i], result["heatmaps"][i]))
        axes[1].set_title(f"explains {class_names[k]}\nP = {result['probs'][i, k]:.3f}", fontsize=9)
        for ax in axes:
            ax.axis("off")
        fig.tight_layout()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(image_id))
        path = out / f"{prefix}_{safe}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")  # keep the two-line titles
        plt.close(fig)
        paths.append(path)
    return paths


def worst_cases(y_true, probs, k: int = 8) -> np.ndarray:
    """Indices of the k most confident wrong predictions (highest probability of a wrong argmax)."""
    p = np.asarray(probs)
    wrong = np.flatnonzero(p.argmax(axis=1) != np.asarray(y_true))
    order = np.argsort(-p[wrong].max(axis=1), kind="stable")
    return wrong[order[:k]]
