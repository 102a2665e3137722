"""The web demo's out-of-distribution gate and class-activation map, fitted at export.

The page must not give a diagnosis for something that is not a close-up of a skin lesion (a
camera test pattern, a black frame, a 1 px image, a grayscale photo). Two stages, both run in
the worker before any result is shown, both stored in meta.json (`gate`):

1. Image checks on the model input (the image resized to the model's size, float RGB 0-255),
   `image_stats`: too small (original short side), near-uniform (std of luminance), saturated
   (share of pixels with luminance <= 5 or >= 250), blurred (variance of the 4-neighbour
   Laplacian of luminance), grayscale (mean of max(RGB) - min(RGB)). Thresholds: a fraction of
   the 0.5th percentile (1 - 99.5th for saturation) of the training images.
2. A feature-space detector: the Mahalanobis distance of the penultimate features (the global
   average of the last conv block) to the nearest class mean, with one shared, shrunk covariance
   (Lee et al. 2018, "A Simple Unified Framework for Detecting OOD Samples"). Its threshold is
   chosen on validation images against generated OOD inputs (`synthetic_ood`, first half), and
   reported on test images against the other half (`evaluate_gate`).

The class-activation map (CAM, Zhou et al. 2016) needs no gradients: MeshNet ends in global
average pooling and one Dense layer, so the melanoma-vs-rest logit is the spatial mean of
`sum_k (w[k, mel] - w[k, other]) * F_k(x, y) + (b_mel - b_other)`; that map is the heat-map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MIN_SIDE = 32  # px, short side of the original image; below it there is no lesion to see
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def image_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """The image-check statistics of model inputs (the same formulas as webdemo/worker.js).

    Args:
        x: float (N, H, W, 3) RGB in [0, 255], already resized to the model's input size.

    Returns:
        {"luma_std", "saturated", "sharpness", "chroma"}: one float64 array of N values each.
    """
    x = np.asarray(x, np.float32)
    lum = x @ _LUMA
    lap = (lum[:, 1:-1, 2:] + lum[:, 1:-1, :-2] + lum[:, 2:, 1:-1] + lum[:, :-2, 1:-1]) - 4 * lum[
        :, 1:-1, 1:-1
    ]
    return {
        "luma_std": lum.reshape(len(x), -1).std(1).astype(np.float64),
        "saturated": ((lum <= 5) | (lum >= 250)).reshape(len(x), -1).mean(1).astype(np.float64),
        "sharpness": lap.reshape(len(x), -1).var(1).astype(np.float64),
        "chroma": (x.max(-1) - x.min(-1)).reshape(len(x), -1).mean(1).astype(np.float64),
    }


def fit_image_checks(train_x: np.ndarray, margin: float = 0.5) -> dict:
    """Thresholds of the image checks from the training images.

    Lower-bound checks reject below `margin` x the 0.5th percentile of the training images;
    saturation rejects above the midpoint between the 99.5th percentile and 1.
    """
    s = image_stats(train_x)
    return {
        "min_side": MIN_SIDE,
        "luma_std_min": float(margin * np.percentile(s["luma_std"], 0.5)),
        "sharpness_min": float(margin * np.percentile(s["sharpness"], 0.5)),
        "chroma_min": float(margin * np.percentile(s["chroma"], 0.5)),
        "saturated_max": float((1 + np.percentile(s["saturated"], 99.5)) / 2),
    }


def image_check_failures(stats: dict[str, np.ndarray], checks: dict) -> np.ndarray:
    """(N,) bool: True where any image check (except size) rejects."""
    return (
        (stats["luma_std"] < checks["luma_std_min"])
        | (stats["sharpness"] < checks["sharpness_min"])
        | (stats["chroma"] < checks["chroma_min"])
        | (stats["saturated"] > checks["saturated_max"])
    )


def feature_model(model, layer_name: str):
    """Keras model: image → (last conv feature map, probabilities)."""
    import keras

    return keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])


def features(model, layer_name: str, x: np.ndarray, batch: int = 128):
    """(feature maps (N, h, w, K), pooled (N, K), probabilities (N, C))."""
    fm = feature_model(model, layer_name)
    maps, probs = [], []
    for i in range(0, len(x), batch):
        f, p = fm.predict_on_batch(x[i : i + batch])
        maps.append(np.asarray(f))
        probs.append(np.asarray(p))
    maps = np.concatenate(maps)
    return maps, maps.mean((1, 2)), np.concatenate(probs)


def fit_mahalanobis(pooled: np.ndarray, labels: np.ndarray) -> dict:
    """Class means and the shared Ledoit-Wolf-shrunk precision of the pooled features."""
    from sklearn.covariance import LedoitWolf

    classes = np.unique(labels)
    means = np.stack([pooled[labels == c].mean(0) for c in classes])
    centred = pooled - means[np.searchsorted(classes, labels)]
    precision = np.linalg.inv(LedoitWolf().fit(centred).covariance_)
    return {"means": means, "precision": precision}


def mahalanobis(pooled: np.ndarray, fit: dict) -> np.ndarray:
    """Distance to the nearest class mean, sqrt((f - mu)^T P (f - mu))."""
    d = pooled[:, None, :] - fit["means"][None]
    q = np.einsum("nck,kl,ncl->nc", d, fit["precision"], d)
    return np.sqrt(np.maximum(q.min(1), 0))


def choose_threshold(d_in: np.ndarray, d_ood: np.ndarray, max_reject: float = 0.05) -> float:
    """The distance threshold that catches the most OOD inputs while rejecting at most
    `max_reject` of the in-distribution ones (Youden's J among those candidates)."""
    cands = np.unique(np.concatenate([d_in, d_ood]))
    best, best_j = float(np.percentile(d_in, 100 * (1 - max_reject))), -1.0
    for t in cands:
        fpr = float((d_in > t).mean())
        if fpr > max_reject:
            continue
        j = float((d_ood > t).mean()) - fpr
        if j > best_j:
            best, best_j = float(t), j
    return best


def cam(maps: np.ndarray, head_w: np.ndarray, head_b: np.ndarray, pos: int) -> np.ndarray:
    """Logit-difference CAM (N, h, w) for class `pos` against the others (2-class: the other)."""
    others = [c for c in range(head_w.shape[1]) if c != pos]
    w = head_w[:, pos] - head_w[:, others].mean(1)
    b = head_b[pos] - head_b[others].mean()
    return maps @ w + b


def cam_meta(model, model_dir: Path) -> dict | None:
    """What the page needs for the class-activation map: the graph node of the last conv
    features (its spatial mean feeds the head) and the head's weights; None when the model does
    not end in global average pooling + Dense `logits`."""
    from export.convert import read_artifacts
    from export.graph_rewrite import pooled_feature_node

    node = pooled_feature_node(read_artifacts(model_dir)[0])
    try:
        w, b = model.get_layer("logits").get_weights()
    except ValueError:
        return None
    if node is None or w.shape[0] != model.get_layer("logits").input.shape[-1]:
        return None
    return {
        "feature_node": node,
        "rule": "map(x, y) = sum_k F_k(x, y) (w[k, pos] - mean_other w[k, c]) + (b[pos] - mean_other b)",
        "weights": w.round(7).tolist(),
        "bias": b.round(7).tolist(),
    }


def gate_meta(gate: dict | None, cam: dict | None) -> dict:
    """meta.json's `gate` (export.ood): the fitted gate.json, or image checks only."""
    if gate is None or cam is None:
        return {
            "image_checks": {"min_side": MIN_SIDE},
            "mahalanobis": None,
            "source": "no gate.json (python -m export.fit_gate): size check only",
        }
    return {**gate, "source": gate.get("command", "gate.json")}


def synthetic_ood(size: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Generated inputs that are not skin-lesion close-ups, at the model's size.

    Uniform colours (black, white, grey, primaries), noise (uniform, Gaussian, salt-and-pepper),
    gradients, checkerboards, stripes, a camera-test-pattern-like frame (green with a yellow
    Pac-Man, as Chromium's fake camera draws) and scikit-image's sample photos when installed.

    Returns:
        (float32 (N, size, size, 3) in [0, 255], one kind name per image).
    """
    rng = np.random.default_rng(seed)
    out, kinds = [], []

    def add(img, kind):
        out.append(np.clip(np.asarray(img, np.float32), 0, 255))
        kinds.append(kind)

    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    for _ in range(12):
        add(np.broadcast_to(rng.uniform(0, 255, 3), (size, size, 3)), "uniform colour")
    for c in ([0, 0, 0], [255, 255, 255], [128, 128, 128], [255, 0, 0], [0, 255, 0]):
        add(np.broadcast_to(c, (size, size, 3)), "uniform colour")
    for _ in range(8):
        add(rng.uniform(0, 255, (size, size, 3)), "uniform noise")
        add(
            rng.normal(rng.uniform(60, 200), rng.uniform(10, 60), (size, size, 3)), "gaussian noise"
        )
        add(255 * (rng.random((size, size, 1)) > 0.5).repeat(3, -1), "salt and pepper")
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (np.cos(rng.uniform(0, np.pi)) * xx + np.sin(rng.uniform(0, np.pi)) * yy)[..., None]
        add(a + (b - a) * (t - t.min()) / (np.ptp(t) + 1e-6), "gradient")
        k = int(rng.integers(2, 16))
        add(
            np.where(((xx * k).astype(int) + (yy * k).astype(int))[..., None] % 2, a, b),
            "checkerboard",
        )
        add(np.where(((xx * k * 2).astype(int) % 2)[..., None] == 1, a, b), "stripes")
    for i in range(8):
        add(camera_test_pattern(size, angle=i * 0.7, seed=i), "camera test pattern")
    for img in _skimage_photos(size):
        add(img, "photo (skimage.data)")
    return np.stack(out), kinds


def camera_test_pattern(size: int, angle: float = 0.0, seed: int = 0) -> np.ndarray:
    """An image like Chromium's fake camera: green frame, yellow Pac-Man, a few grey marks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.zeros((size, size, 3), np.float32)
    img[...] = [0, 128 + rng.uniform(-20, 20), 0]
    cx, cy, r = size * 0.5, size * 0.5, size * 0.3
    ang = np.arctan2(yy - cy, xx - cx) - angle
    mouth = np.abs((ang + np.pi) % (2 * np.pi) - np.pi) < 0.5
    disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r) & ~mouth
    img[disc] = [255, 255, 0]
    img[int(size * 0.05) : int(size * 0.12), int(size * 0.05) : int(size * 0.4)] = 200
    return img


def _skimage_photos(size: int) -> list[np.ndarray]:
    """scikit-image's bundled sample photos (no download), resized; [] without scikit-image."""
    try:
        from skimage import data, transform
    except ImportError:
        return []
    names = (
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "camera",
        "coins",
        "moon",
        "page",
        "text",
        "clock",
        "horse",
        "hubble_deep_field",
        "immunohistochemistry",
        "retina",
        "motorcycle_left",
        "logo",
        "cat",
        "brick",
        "grass",
        "gravel",
        "colorwheel",
    )
    out = []
    for name in names:
        try:
            img = np.asarray(getattr(data, name)(), np.float32)
        except Exception:  # noqa: BLE001 - a sample that needs a download (pooch) is skipped
            continue
        if img.dtype == bool or img.max() <= 1.0:
            img = img * 255.0
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, -1)
        img = img[..., :3]
        out.append(transform.resize(img, (size, size), preserve_range=True, anti_aliasing=True))
    return out
