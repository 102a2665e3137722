"""Segmentation scores and the evaluation report: small pure metric functions (NumPy in,
numbers out), per-image CSV, summary, best/median/worst grid, the ablation table.

Definitions (AER-Net eqs. 2-5): Jaccard `J = TP / (TP + FP + FN) = |G n O| / |G u O|`,
Dice `D = 2 TP / (2 TP + FP + FN) = 2 |G n O| / (|G| + |O|)`.

* **thresholded** (`threshold=0.5`): predictions are binarised first - what the paper and the
  ISIC challenges report; **soft** (`threshold=None`): probabilities are used as they are.
* **per image**: one score per image, then averaged (the paper's "mean Jaccard");
  **dataset-level**: TP/FP/FN summed over every pixel of every image, one ratio.
* **ISIC 2018 thresholded Jaccard**: per-image Jaccard, scores below 0.65 count as 0, then mean.

An image whose truth and prediction are both empty scores 1 (perfect agreement), not NaN. The
Keras versions that training compiles are `tfmelanoma.models.segmentation.losses`'s.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tfmelanoma.fsio import atomic_write_text

ISIC2018_JACCARD_CUTOFF = 0.65


def _as_batch(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2:  # one (H, W) mask
        y = y[None]
    return y.reshape(y.shape[0], -1)


def confusion_counts(y_true, y_pred, threshold: float | None = 0.5):
    """Per-image TP, FP, FN.

    Args:
        y_true: ground truth masks (N, H, W[, 1]) or one (H, W) mask, values in {0, 1}.
        y_pred: predicted probabilities, same shape.
        threshold: binarise predictions at `>= threshold`; None keeps them soft.

    Returns:
        Three float arrays of shape (N,).
    """
    t = _as_batch(y_true)
    p = _as_batch(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: truth {t.shape}, prediction {p.shape}")
    t = (t >= 0.5).astype(np.float64)
    if threshold is not None:
        p = (p >= threshold).astype(np.float64)
    return (t * p).sum(1), ((1 - t) * p).sum(1), (t * (1 - p)).sum(1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)


def jaccard_per_image(y_true, y_pred, threshold: float | None = 0.5) -> np.ndarray:
    """Per-image Jaccard `TP / (TP + FP + FN)`, shape (N,)."""
    tp, fp, fn = confusion_counts(y_true, y_pred, threshold)
    return _ratio(tp, tp + fp + fn)


def dice_per_image(y_true, y_pred, threshold: float | None = 0.5) -> np.ndarray:
    """Per-image Dice `2 TP / (2 TP + FP + FN)`, shape (N,)."""
    tp, fp, fn = confusion_counts(y_true, y_pred, threshold)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def jaccard_dataset(y_true, y_pred, threshold: float | None = 0.5) -> float:
    """Dataset-level Jaccard: counts summed over all images before the ratio."""
    tp, fp, fn = (c.sum() for c in confusion_counts(y_true, y_pred, threshold))
    return float(_ratio(tp, tp + fp + fn))


def dice_dataset(y_true, y_pred, threshold: float | None = 0.5) -> float:
    """Dataset-level Dice: counts summed over all images before the ratio."""
    tp, fp, fn = (c.sum() for c in confusion_counts(y_true, y_pred, threshold))
    return float(_ratio(2 * tp, 2 * tp + fp + fn))


def thresholded_jaccard(per_image_jaccard, cutoff: float = ISIC2018_JACCARD_CUTOFF) -> float:
    """ISIC 2018 Task 1 score: mean of per-image Jaccard with scores below `cutoff` set to 0."""
    scores = np.asarray(per_image_jaccard, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("thresholded_jaccard needs at least one per-image score")
    return float(np.where(scores < cutoff, 0.0, scores).mean())


def summarize(per_image_jaccard, per_image_dice) -> dict:
    """Mean per-image Jaccard / Dice and the ISIC 2018 thresholded Jaccard, as a dict."""
    j = np.asarray(per_image_jaccard, np.float64)
    d = np.asarray(per_image_dice, np.float64)
    return {
        "n_images": int(j.size),
        "jaccard": float(j.mean()),
        "dice": float(d.mean()),
        "thresholded_jaccard": thresholded_jaccard(j),
        "jaccard_median": float(np.median(j)),
    }


def score_predictions(
    masks: np.ndarray, probs: np.ndarray, image_ids: list, threshold: float = 0.5
):
    """Per-image and dataset-level scores.

    Args:
        masks: (N, H, W, 1) truth in {0, 1}.
        probs: (N, H, W, 1) predicted probabilities.
        image_ids: N ids.
        threshold: binarisation threshold for the reported (thresholded) metrics.

    Returns:
        `(rows, summary)`: one dict per image (id, jaccard, dice, soft scores, areas) and the
        summary dict (means, ISIC 2018 thresholded Jaccard, dataset-level and soft scores).
    """
    if len(image_ids) != len(masks) or masks.shape != probs.shape:
        raise ValueError(
            f"{len(image_ids)} ids, truth {masks.shape} and predictions {probs.shape} do not match"
        )
    jac = jaccard_per_image(masks, probs, threshold)
    dic = dice_per_image(masks, probs, threshold)
    soft_j = jaccard_per_image(masks, probs, None)
    soft_d = dice_per_image(masks, probs, None)
    rows = [
        {
            "image_id": image_ids[i],
            "jaccard": float(jac[i]),
            "dice": float(dic[i]),
            "soft_jaccard": float(soft_j[i]),
            "soft_dice": float(soft_d[i]),
            "truth_fraction": float(masks[i].mean()),
            "predicted_fraction": float((probs[i] >= threshold).mean()),
        }
        for i in range(len(image_ids))
    ]
    summary = summarize(jac, dic)
    summary.update(
        {
            "dataset_jaccard": jaccard_dataset(masks, probs, threshold),
            "dataset_dice": dice_dataset(masks, probs, threshold),
            "soft_jaccard": float(soft_j.mean()),
            "soft_dice": float(soft_d.mean()),
            "threshold": threshold,
        }
    )
    return rows, summary


def write_scores(rows: list, summary: dict, out_dir: Path) -> None:
    """Writes `per_image.csv` (sorted by Jaccard, worst first) and `metrics.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "per_image.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: r["jaccard"]))
    atomic_write_text(out_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")


def pick_cases(scores: np.ndarray, per_group: int = 2) -> list[tuple[str, int]]:
    """Indices of the best, median and worst cases by score: [(label, index), ...]."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    n = len(order)
    k = max(1, min(per_group, n // 3 or 1))
    mid = n // 2 - k // 2
    picks = [("best", i) for i in order[:k]]
    picks += [("median", i) for i in order[mid : mid + k]]
    picks += [("worst", i) for i in order[n - k :]]
    return picks


def save_grid(images, masks, probs, image_ids, scores, path: Path, per_group: int = 2) -> None:
    """PNG grid, one row per case (best, median, worst): image, truth, prediction (AER-Net Fig. 6).

    Args:
        images: (N, H, W, 3) RGB [0, 255].
        masks: (N, H, W, 1) truth.
        probs: (N, H, W, 1) probabilities (shown thresholded at 0.5 with the contour of the truth).
        image_ids: N ids.
        scores: N per-image Jaccard scores (the ranking).
        path: output PNG.
        per_group: rows per group.
    """
    import matplotlib  # noqa: PLC0415  (only the report needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    picks = pick_cases(scores, per_group)
    fig, axes = plt.subplots(len(picks), 3, figsize=(7.5, 2.6 * len(picks)), squeeze=False)
    for row, (label, i) in enumerate(picks):
        panels = (
            (np.clip(images[i], 0, 255).astype(np.uint8), "image", None),
            (masks[i, ..., 0], "truth", "gray"),
            ((probs[i, ..., 0] >= 0.5).astype(np.float32), "prediction", "gray"),
        )
        for col, (panel, title, cmap) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, cmap=cmap, vmin=0, vmax=1 if cmap else None)
            if col == 2:
                ax.contour(masks[i, ..., 0], levels=[0.5], colors="red", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(
                f"{title}" if col else f"{label}: {image_ids[i]}\nJaccard {scores[i]:.3f}",
                fontsize=8,
            )
    fig.suptitle("best / median / worst (red: truth contour)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate_model(model, ds, image_ids, out: Path, threshold: float = 0.5) -> dict:
    """Predicts a dataset, writes per_image.csv, metrics.json and grid.png; returns the summary.

    Args:
        model: segmentation model.
        ds: tf.data batches or a `segmentation_numpy.SegmentationBatches` (any backend; its ids are used
            when `image_ids` is None).
        image_ids: ids in dataset order, or None (`#i` when the dataset has none).
        out: output folder.
        threshold: binarisation threshold.
    """
    images, masks, probs = [], [], []
    batches = (ds[i] for i in range(len(ds))) if hasattr(ds, "image_ids") else ds
    for x, y in batches:  # tf.data tensors or NumPy arrays (PyDataset)
        images.append(np.asarray(x))
        masks.append(np.asarray(y))
        probs.append(np.asarray(model.predict_on_batch(x)))
    images, masks, probs = (np.concatenate(a) for a in (images, masks, probs))
    if image_ids is None:
        image_ids = ds.image_ids() if hasattr(ds, "image_ids") else None
    if image_ids is None:
        image_ids = [f"#{i}" for i in range(len(masks))]
    rows, summary = score_predictions(masks, probs, list(image_ids), threshold)
    write_scores(rows, summary, out)
    save_grid(images, masks, probs, image_ids, [r["jaccard"] for r in rows], out / "grid.png")
    return summary


def write_ablation(rows: list, out: Path) -> None:
    """Writes (and prints) `ablation.md`: one table row per model summary."""
    lines = [
        "| model | params | train s | Jaccard | Dice | thresholded Jaccard |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['train_seconds']} | "
            f"{r.get('jaccard', float('nan')):.4f} | {r.get('dice', float('nan')):.4f} | "
            f"{r.get('thresholded_jaccard', float('nan')):.4f} |"
        )
    atomic_write_text(out / "ablation.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
