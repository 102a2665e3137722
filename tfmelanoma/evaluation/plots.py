"""The report's PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI, servers, the training CLI; must precede pyplot.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from scipy.special import expit  # noqa: E402
from scipy.special import logit as logit_fn  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from tfmelanoma.evaluation import calibration  # noqa: E402
from tfmelanoma.evaluation.metrics import roc_auc  # noqa: E402

_DPI = 110


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def reliability_diagram(
    y_true,
    variants: dict[str, np.ndarray],
    n_bins: int,
    path: Path,
    positive: int | None = None,
) -> Path:
    """Reliability diagram, one column per probability variant (e.g. before / after scaling).

    Bars are the observed frequency in each probability bin, the dashed diagonal is perfect
    calibration, red hatched bars show the gap; the lower row is the number of predictions per bin.

    Args:
        y_true: (N,) labels.
        variants: {title: (N, K) probabilities}.
        n_bins: number of equal-width bins.
        path: PNG file to write.
        positive: None for the top-label form (confidence of the predicted class vs accuracy);
            a class index for the melanoma-probability form (P(class) vs fraction of that class).
    """
    cols = len(variants)
    fig, axes = plt.subplots(
        2, cols, figsize=(4.2 * cols, 5.2), squeeze=False, gridspec_kw={"height_ratios": [3, 1]}
    )
    y = np.asarray(y_true)
    for c, (title, probs) in enumerate(variants.items()):
        if positive is None:
            conf, hit = probs.max(axis=1), probs.argmax(axis=1) == y
            ece = calibration.ece_top_label(y, probs, n_bins)
            xlabel, ylabel, ece_name = "confidence (max probability)", "accuracy", "top-label"
        else:
            conf, hit = probs[:, positive], y == positive
            ece = calibration.ece_melanoma(hit, conf, n_bins)
            xlabel, ylabel, ece_name = "predicted P(melanoma)", "fraction melanoma", "melanoma"
        b = calibration.reliability_bins(conf, hit, n_bins)
        centres = (b["edges"][:-1] + b["edges"][1:]) / 2
        width = 1.0 / n_bins
        acc = np.nan_to_num(b["accuracy"])
        gap_base = np.nan_to_num(b["confidence"])
        ax = axes[0, c]
        ax.bar(centres, acc, width=width, edgecolor="black", color="#4c72b0", label=ylabel)
        ax.bar(
            centres,
            gap_base - acc,
            bottom=acc,
            width=width,
            color="none",
            edgecolor="#c44e52",
            hatch="//",
            label="gap to mean probability",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            title=f"{title}\nECE ({ece_name}) = {ece:.3f}",
            xlabel=xlabel,
            ylabel=ylabel,
        )
        ax.legend(loc="upper left", fontsize=8)
        axes[1, c].bar(centres, b["count"], width=width, color="#8c8c8c", edgecolor="black")
        axes[1, c].set(xlim=(0, 1), xlabel=xlabel, ylabel="count")
    return _save(fig, path)


_LOGIT_EDGE = 1e-9  # the logit axis ends this close to 0 and 1 (1.0 itself is infinitely far)


def _crowded_near_one(sweeps, lo: float, hi: float) -> bool:
    """True when half the predictions lie in the top 10 % of the range, within 0.01 of 1.

    Entropies of outputs near 0.5 pile up against 1 (0.998-1.0 in a short run): on a linear
    axis every curve is a vertical line at the right edge, so the plots switch to a logit axis.
    """
    for sweep in sweeps:
        above_half = np.asarray(sweep["threshold"])[np.asarray(sweep["coverage"]) >= 0.5]
        if not above_half.size:
            return False
        median = float(above_half.min())
        if 1.0 - median >= 0.01 or hi - median >= 0.1 * (hi - lo):
            return False
    return True


def data_xlim(sweeps, chosen: float | None = None, logit: bool = False) -> tuple[float, float]:
    """x-range of the threshold plots: the swept thresholds (and the chosen one), padded 4 %.

    The sweeps span the entropies that occur, so an axis fixed at 0-1 would squeeze every
    change into a sliver when the entropies lie in [0.96, 1]. With `logit`, the padding is
    taken on the logit axis.
    """
    values = np.concatenate([np.asarray(s["threshold"], dtype=np.float64) for s in sweeps])
    if chosen is not None:
        values = np.r_[values, chosen]
    if logit:
        inner = values[values < 1.0]  # 1.0 (keep everything) is infinitely far on this axis
        z = logit_fn(np.clip(inner if inner.size else values, _LOGIT_EDGE, 1 - _LOGIT_EDGE))
        pad = 0.04 * (z.max() - z.min()) or 0.1
        return float(expit(z.min() - pad)), float(expit(z.max() + pad))
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.04 * (hi - lo), 1e-4)
    return max(0.0, lo - pad), min(1.0, hi + pad)


def _entropy_axis(ax, sweeps, chosen: float | None, xlabel: str) -> tuple[float, float]:
    """Sets the x-axis of a threshold plot to the data (linear, or logit when crowded near 1)."""
    sweeps = list(sweeps)
    lo, hi = data_xlim(sweeps, chosen)
    if _crowded_near_one(sweeps, lo, hi):
        ax.set_xscale("logit", nonpositive="clip")
        lo, hi = data_xlim(sweeps, chosen, logit=True)
        xlabel += " (logit scale)"
    ax.set(xlim=(lo, hi), xlabel=xlabel)
    return lo, hi


def threshold_curve(
    sweeps: dict[str, dict[str, np.ndarray]],
    key: str,
    chosen: float | None,
    ylabel: str,
    path: Path,
    min_coverage: float | None = None,
) -> Path:
    """A metric of the retained predictions against the entropy threshold, one line per split.

    The x-axis spans the swept thresholds (`data_xlim`), not the whole of [0, 1], on a logit
    scale when the entropies crowd against 1.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, sweep in sweeps.items():
        ax.plot(sweep["threshold"], sweep[key], marker=".", markersize=3, label=name)
    if chosen is not None:
        ax.axvline(chosen, color="#c44e52", linestyle="--", label=f"chosen threshold {chosen:.2f}")
    if min_coverage is not None:
        ax.axhline(
            min_coverage, color="gray", linestyle=":", label=f"min coverage {min_coverage:.0%}"
        )
    _entropy_axis(ax, sweeps.values(), chosen, "normalised entropy threshold (reject above)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def selection_curve(
    sweep: dict[str, np.ndarray],
    chosen: float | None,
    path: Path,
    min_coverage: float,
    candidates: dict[str, np.ndarray] | None = None,
) -> Path:
    """The selection rule on validation: ECE, Brier and their mean against the threshold.

    Thresholds whose validation coverage is below `min_coverage` are shaded: not eligible.
    `candidates` (the sweep over the rule's grid) are drawn as dots where they fall in range.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    xlim = _entropy_axis(ax, [sweep], chosen, "normalised entropy threshold")
    low = sweep["threshold"][sweep["coverage"] < min_coverage]
    if low.size:
        ax.axvspan(
            max(xlim[0], low.min()),  # not from 0: 0 is infinitely far on a logit axis
            low.max(),
            color="0.85",
            label=f"coverage < {min_coverage:.0%} (not eligible)",
        )
    for key, style in (("ece", "-"), ("brier", "-"), ("criterion", "-k")):
        label = (
            "(ECE + Brier) / 2" if key == "criterion" else key.upper() if key == "ece" else "Brier"
        )
        ax.plot(
            sweep["threshold"],
            sweep[key],
            style,
            label=label,
            linewidth=2 if key == "criterion" else 1,
        )
    if candidates is not None:
        inside = (candidates["threshold"] >= xlim[0]) & (candidates["threshold"] <= xlim[1])
        ax.plot(
            candidates["threshold"][inside],
            candidates["criterion"][inside],
            "ko",
            markersize=4,
            label="grid thresholds searched",
        )
    if chosen is not None:
        ax.axvline(chosen, color="#c44e52", linestyle="--", label=f"chosen {chosen:.2f}")
    ax.set(ylabel="value on retained validation", xlim=xlim)  # axvspan must not widen it
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def risk_coverage_plot(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], chosen: dict[str, float], path: Path
) -> Path:
    """Risk (error rate of the kept predictions) against coverage, most certain first.

    Args:
        curves: {split: (coverage, risk)} from `uncertainty.risk_coverage`.
        chosen: {split: coverage at the chosen threshold}, marked on each curve.
        path: PNG file to write.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (coverage, risk) in curves.items():
        (line,) = ax.plot(coverage, risk, label=name)
        if name in chosen and chosen[name] > 0:
            k = max(int(round(chosen[name] * coverage.size)) - 1, 0)
            ax.plot(
                coverage[k],
                risk[k],
                "o",
                color=line.get_color(),
                label=f"{name} at the chosen threshold ({chosen[name]:.0%} kept)",
            )
    # Risk is zoomed to the curves (autoscale); coverage always spans its natural 0-1.
    ax.set(xlabel="coverage (fraction kept, most certain first)", ylabel="error rate", xlim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def roc_plot(y_true_positive, p_positive, retained, path: Path, positive_name: str) -> Path:
    """ROC curve of P(positive) on all test images and on the retained ones."""
    fig, ax = plt.subplots(figsize=(5, 5))
    y = np.asarray(y_true_positive).astype(int)
    p = np.asarray(p_positive)
    curves = {"all images": np.ones_like(y, dtype=bool)}
    if retained is not None:
        curves["after rejection"] = np.asarray(retained)
    for name, mask in curves.items():
        if np.unique(y[mask]).size < 2:
            continue  # ROC undefined with one class; say nothing rather than draw a wrong line.
        fpr, tpr, _ = roc_curve(y[mask], p[mask])
        style = "-" if name == "all images" else "--"  # dashed: visible when the curves coincide
        auc = roc_auc(y[mask], p[mask])
        ax.plot(fpr, tpr, style, label=f"{name} (AUC {auc:.3f}, n={mask.sum()})")
    ax.plot([0, 1], [0, 1], "k:", linewidth=1, label="chance")
    ax.set(
        xlabel="false positive rate (1 - specificity)",
        ylabel="true positive rate (sensitivity)",
        title=f"ROC, {positive_name} vs rest",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def training_curves(history_csv: Path, path: Path, best_epoch: int | None = None) -> Path | None:
    """Per-epoch curves of a training run (`history.csv`, epochs from 1), train vs validation.

    One panel per metric (loss first), training solid and validation dashed, the best epoch
    (1-based, as in metrics.json) marked. Returns None when the history has no epoch yet.
    """
    import pandas as pd  # noqa: PLC0415  (only this plot reads a CSV)

    history = pd.read_csv(history_csv)
    if history.empty or "epoch" not in history:
        return None
    epochs = history["epoch"].to_numpy()  # from 1 (training.progress.HistoryCSV)
    names = [c for c in history.columns if c != "epoch" and not c.startswith("val_")]
    names = sorted(names, key=lambda n: (n != "loss", n))  # loss first
    names = [n for n in names if n != "learning_rate"] + (
        ["learning_rate"] if "learning_rate" in names else []
    )
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot(epochs, history[name], marker=".", label="training")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker=".", ls="--", label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", lw=0.8, ls=":", label=f"best (epoch {best_epoch})")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)
