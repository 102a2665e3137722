"""Writes the report folder: metrics.json, predictions.csv, PNG plots, report.md and report.html.

The report is built once as a list of blocks (headings, tables, paragraphs, images) and rendered
twice: Markdown with relative image links, and a self-contained HTML page with the PNGs inlined
as base64 so it can be mailed or attached as one file.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from pathlib import Path

import numpy as np

from tfmelanoma.evaluation import plots
from tfmelanoma.fsio import atomic_write_text

_NAMES = {
    "n": "images",
    "precision": "precision (PPV)",
    "sensitivity": "sensitivity (recall)",
    "specificity": "specificity",
    "f1": "F1",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "auc_roc": "AUC-ROC",
    "average_precision": "average precision",
    "ece_top_label": "ECE, top-label",
    "ece_melanoma": "ECE, melanoma probability",
    "brier_melanoma": "Brier, melanoma (binary)",
    "brier_multiclass": "Brier, multi-class (0-2)",
    "log_loss": "log loss",
}


def json_ready(obj):
    """Plain JSON values: numpy scalars/arrays to Python, NaN/inf to None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float) and v.is_integer() and abs(v) > 1:
        return str(int(v))
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _label(key: str) -> str:
    if key.startswith("macro_"):
        return "macro " + _NAMES.get(key[6:], key[6:])
    if key.startswith("melanoma_"):
        return "melanoma vs rest: " + _NAMES.get(key[9:], key[9:])
    return _NAMES.get(key, key)


def _with_ci(block: dict, key: str) -> str:
    value = block["values"].get(key)
    ci = block["ci"].get(key)
    text = _fmt(value)
    if ci and all(c is not None and math.isfinite(c) for c in ci):
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def _write_predictions(path: Path, test, ids, entropy, keep, fitted) -> None:
    cal = fitted.get("temperature")
    cal_probs = cal.apply(test.probs) if cal else None
    col = test.mel if test.mel is not None else None
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        header = [
            "image_id",
            "label",
            "probability",
            "entropy",
            "decision",
            "prediction",
            "correct",
        ]
        header += ["probability_temperature"] if cal else []
        header += [f"prob_{n}" for n in test.names]
        w.writerow(header)
        for i in range(test.y.size):
            p = test.probs[i, col] if col is not None else test.probs[i].max()
            pred_name = test.names[test.pred[i]]
            row = [
                ids[i],
                test.names[test.y[i]],
                f"{p:.6f}",
                f"{entropy[i]:.6f}",
                pred_name if keep[i] else "uncertain",
                pred_name,
                int(test.pred[i] == test.y[i]),
            ]
            if cal:
                row.append(f"{(cal_probs[i, col] if col is not None else cal_probs[i].max()):.6f}")
            row += [f"{v:.6f}" for v in test.probs[i]]
            w.writerow(row)


def _plots(out: Path, test, keep, threshold, fitted, curves, cfg) -> list[tuple[str, str]]:
    """Writes the PNGs; `curves` is {split: (labels, probabilities rejection uses, entropy)}."""
    from tfmelanoma.evaluation import uncertainty

    images = []
    variants = {"model probabilities (test)": test.probs}
    if "temperature" in fitted:
        t = fitted["temperature"].params["temperature"]
        variants[f"temperature-scaled, T={t:.2f} (test)"] = fitted["temperature"].apply(test.probs)
    plots.reliability_diagram(test.y, variants, cfg.ece_bins, out / "reliability.png")
    images.append(
        ("reliability.png", "Reliability diagram (top-label), before / after temperature scaling")
    )
    if test.mel is not None:
        plots.reliability_diagram(
            test.y, variants, cfg.ece_bins, out / "reliability_melanoma.png", positive=test.mel
        )
        images.append(
            (
                "reliability_melanoma.png",
                "Reliability of P(melanoma) (the risk shown to a user), before / after scaling",
            )
        )
    # The curves are swept where the entropies are, so the plots zoom to the data.
    grid = uncertainty.plot_grid([h for _, _, h in curves.values()], cfg.threshold_grid, threshold)
    sweeps = {
        name: uncertainty.threshold_sweep(y, p, grid, cfg.ece_bins, h)
        for name, (y, p, h) in curves.items()
    }
    span = f"entropies {grid[0]:.3f}-{grid[-1]:.3f}"
    plots.threshold_curve(
        sweeps,
        "accuracy",
        threshold,
        "accuracy of retained predictions",
        out / "accuracy_vs_threshold.png",
    )
    images.append(
        (
            "accuracy_vs_threshold.png",
            f"Accuracy of the retained predictions against the entropy threshold ({span})",
        )
    )
    plots.threshold_curve(
        sweeps,
        "coverage",
        threshold,
        "coverage (fraction retained)",
        out / "coverage.png",
        cfg.min_coverage,
    )
    images.append(("coverage.png", f"Coverage against the entropy threshold ({span})"))
    plots.risk_coverage_plot(
        {name: uncertainty.risk_coverage(*c) for name, c in curves.items()},
        {name: float(np.mean(h <= threshold)) for name, (_, _, h) in curves.items()}
        if threshold is not None
        else {},
        out / "risk_coverage.png",
    )
    images.append(
        (
            "risk_coverage.png",
            "Risk-coverage: error rate of the most certain predictions against the share kept",
        )
    )
    if "validation" in sweeps and cfg.entropy_threshold is None:  # chosen on validation
        candidates = uncertainty.threshold_sweep(
            *curves["validation"][:2], cfg.threshold_grid, cfg.ece_bins, curves["validation"][2]
        )
        plots.selection_curve(
            sweeps["validation"],
            threshold,
            out / "threshold_selection.png",
            cfg.min_coverage,
            candidates,
        )
        images.append(
            (
                "threshold_selection.png",
                "Threshold selection on validation: (ECE + Brier) / 2 of retained predictions "
                f"(dots: the grid the rule searches; {span})",
            )
        )
    if test.mel is not None:
        plots.roc_plot(
            test.y == test.mel,
            test.probs[:, test.mel],
            None if threshold is None or keep.all() else keep,  # one curve when nothing rejected
            out / "roc.png",
            test.names[test.mel],
        )
        images.append(("roc.png", "ROC curve, all test images and retained ones"))
    return images


def _blocks(result: dict, images, cfg) -> list[tuple]:
    rej = result["rejection"]
    before, after = result["before_rejection"], result["after_rejection"]
    blocks: list[tuple] = [("h1", "Evaluation report")]
    pos = result["positive_class"]
    blocks.append(
        (
            "p",
            f"{result['n_test']} test images, classes {', '.join(result['class_names'])}; "
            f"positive class for binary metrics: {pos or 'none (no melanoma class)'}. "
            f"Intervals are {cfg.confidence_level:.0%} percentile bootstrap "
            f"({cfg.bootstrap_n} resamples, seed {cfg.bootstrap_seed}).",
        )
    )
    blocks.append(("h2", "Rejection of uncertain predictions"))
    thr = "none" if rej["threshold"] is None else f"{rej['threshold']:.2f}"
    rows = [
        ["threshold (normalised entropy, reject above)", thr],
        ["chosen by", rej["threshold_source"]],
        ["entropy computed from", rej["entropy_from"]],
        ["coverage on test", f"{rej['coverage_test']:.1%}"],
        [
            "coverage on validation",
            "n/a" if rej["coverage_validation"] is None else f"{rej['coverage_validation']:.1%}",
        ],
        [
            "rejected (wrong / correct)",
            f"{rej['n_rejected']} ({rej['rejected_wrong']} / {rej['rejected_correct']})",
        ],
    ]
    if "false_positives_prevented" in rej:
        rows += [
            ["false positives prevented", str(rej["false_positives_prevented"])],
            ["false negatives prevented", str(rej["false_negatives_prevented"])],
        ]
    blocks.append(("table", ["", "value"], rows))
    blocks += [("p", note) for note in rej.get("notes", [])]
    blocks += _operating_point_blocks(result, cfg)
    keys = [k for k in before["values"] if k != "log_loss"]
    ci = f"{cfg.confidence_level:.0%} CI"
    if rej["threshold"] is not None and rej["n_rejected"] == 0:
        blocks.append(("h2", "Metrics (nothing rejected: after rejection = before)"))
        rows = [[_label(k), _with_ci(before, k)] for k in keys]
        blocks.append(("table", ["metric", f"all test images [{ci}]"], rows))
    else:
        blocks.append(("h2", "Metrics before / after rejection"))
        rows = [[_label(k), _with_ci(before, k), _with_ci(after, k)] for k in keys]
        blocks.append(
            ("table", ["metric", f"before rejection [{ci}]", f"after rejection [{ci}]"], rows)
        )
    cal = result["calibration"]
    blocks.append(("h2", "Calibration before / after post-hoc scaling (fitted on validation)"))
    cols = ["ece_top_label", "ece_melanoma", "brier_melanoma", "brier_multiclass", "log_loss"]
    cols = [c for c in cols if c in cal["test"]["uncalibrated"]]
    rows = [
        [split, method] + [_fmt(vals[c]) for c in cols]
        for split in ("test", "validation")
        if split in cal
        for method, vals in cal[split].items()
    ]
    blocks.append(("table", ["split", "probabilities"] + [_label(c) for c in cols], rows))
    if cal["params"]:
        blocks.append(
            (
                "p",
                "Fitted: "
                + "; ".join(f"{m}: {json.dumps(json_ready(p))}" for m, p in cal["params"].items())
                + ". Temperature scaling uses log-probabilities as logits (the model returns probabilities).",
            )
        )
    for note in cal["notes"]:
        blocks.append(("p", note))
    if "misdiagnoses" in result:
        blocks.append(("h2", "Misdiagnoses by image id"))
        blocks += _misdiagnosis_blocks(result["misdiagnoses"], cfg.max_listed_ids)
    blocks.append(("h2", "Plots"))
    blocks += [("img", f, caption) for f, caption in images]
    return blocks


def _id_list(ids: list[str], n: int) -> str:
    more = f" … (+{len(ids) - n} more in metrics.json)" if len(ids) > n else ""
    return (", ".join(ids[:n]) or "none") + more


def _misdiagnosis_blocks(m: dict, n: int) -> list[tuple]:
    """Each misdiagnosed id once: still wrong after rejection, or referred (rejection prevented it).

    The before-rejection list is exactly those two together, so it is not printed a third time.
    """
    blocks = []
    for kind in ("false_positive_ids", "false_negative_ids"):
        title = kind[:-4].replace("_", " ") + "s"
        every, kept, referred = (
            m[s][kind] for s in ("before_rejection", "after_rejection", "prevented")
        )
        if not referred:
            blocks.append(("p", f"**{title} ({len(every)}, none rejected)**: {_id_list(every, n)}"))
            continue
        blocks.append(
            (
                "p",
                f"**{title} ({len(every)})**: still wrong after rejection ({len(kept)}): "
                f"{_id_list(kept, n)}; rejected, referred to a human ({len(referred)}): "
                f"{_id_list(referred, n)}",
            )
        )
    return blocks


def _operating_point_blocks(result: dict, cfg) -> list[tuple]:
    op = result.get("operating_point") or {}
    if op.get("target_sensitivity") is None:
        return []
    blocks: list[tuple] = [("h2", "Operating point for screening (chosen on validation)")]
    if op.get("threshold") is None:
        return blocks + [("p", op.get("note", "no operating point"))]
    before = result["before_rejection"]
    prefix = "" if len(result["class_names"]) == 2 else "melanoma_"
    plain = "argmax (0.5)" if not prefix else "argmax"
    chosen = op["test"]
    rows = [
        [
            _label(k),
            _with_ci(before, prefix + k),
            _with_ci(chosen, k),
            _fmt(op["validation"][k]),
        ]
        for k in ("sensitivity", "specificity", "precision", "balanced_accuracy")
    ]
    blocks.append(
        (
            "p",
            f"Target sensitivity {op['target_sensitivity']:.0%} on validation: "
            f"{op['rule']}. The cut-off is frozen on validation and applied to every test "
            "image (no rejection).",
        )
    )
    ci = f"{cfg.confidence_level:.0%} CI"
    head = [
        "metric",
        f"test, {plain} cut-off [{ci}]",
        f"test, cut-off {op['threshold']:.4g} [{ci}]",
        "validation, same cut-off",
    ]
    return blocks + [("table", head, rows)]


def _markdown(blocks) -> str:
    out = []
    for b in blocks:
        if b[0] in ("h1", "h2"):
            out.append(("# " if b[0] == "h1" else "## ") + b[1])
        elif b[0] == "p":
            out.append(b[1])
        elif b[0] == "table":
            out.append("| " + " | ".join(b[1]) + " |\n|" + "---|" * len(b[1]))
            out[-1] += "".join("\n| " + " | ".join(map(str, r)) + " |" for r in b[2])
        elif b[0] == "img":
            out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
    return "\n\n".join(out) + "\n"


def _html(blocks, out: Path) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Evaluation report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}img{max-width:100%}</style>",
    ]
    for b in blocks:
        if b[0] in ("h1", "h2"):
            parts.append(f"<{b[0]}>{html.escape(b[1])}</{b[0]}>")
        elif b[0] == "p":
            text = html.escape(b[1])
            while "**" in text:  # the one Markdown construct the paragraphs use
                text = text.replace("**", "<b>", 1).replace("**", "</b>", 1)
            parts.append(f"<p>{text}</p>")
        elif b[0] == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b[1])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                for r in b[2]
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        elif b[0] == "img":
            data = base64.b64encode((out / b[1]).read_bytes()).decode("ascii")
            parts.append(
                f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(b[2])}'>"
                f"<figcaption>{html.escape(b[2])}</figcaption></figure>"
            )
    return "\n".join(parts) + "\n"


def write_report(
    out: Path, result, test, ids, entropy, keep, threshold, fitted, curves, cfg
) -> None:
    """Writes every file of the report folder (see module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    _write_predictions(out / "predictions.csv", test, ids, entropy, keep, fitted)
    images = _plots(out, test, keep, threshold, fitted, curves, cfg) if cfg.plots else []
    blocks = _blocks(result, images, cfg)
    files = ["metrics.json", "predictions.csv", "report.md", "report.html"] + [f for f, _ in images]
    result["files"] = files
    atomic_write_text(out / "report.md", _markdown(blocks))
    atomic_write_text(out / "report.html", _html(blocks, out))
    # metrics.json last: its presence says the report is complete, and no reader sees half of it.
    atomic_write_text(out / "metrics.json", json.dumps(json_ready(result), indent=2))
