"""`evaluate_predictions`: the one evaluation entry point (training CLI, grid, evaluate CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfmelanoma.evaluation import calibration, metrics, uncertainty
from tfmelanoma.evaluation.config import EvalConfig
from tfmelanoma.evaluation.probs import as_labels, as_prob_matrix, check_class_names, melanoma_index
from tfmelanoma.logging_utils import get_logger

log = get_logger(__name__)

BINARY_ONLY = ("platt", "isotonic")


class Split:
    """Labels, probabilities and derived arrays of one evaluated split (validated)."""

    def __init__(self, y_true, probs, class_names: Sequence[str], what: str):
        self.probs = as_prob_matrix(probs, f"{what} probabilities")
        self.names = check_class_names(class_names, self.probs.shape[1])
        self.y = as_labels(y_true, self.probs.shape[1], f"{what} labels")
        if self.y.shape[0] != self.probs.shape[0]:
            raise ValueError(
                f"{what}: {self.y.shape[0]} labels but {self.probs.shape[0]} predictions"
            )
        self.pred = self.probs.argmax(axis=1)
        self.mel = melanoma_index(self.names)


def block_metrics(y, probs, pred, mel: int | None, n_bins: int) -> dict[str, float]:
    """Every metric of one set of predictions (all images, or the retained ones).

    For two classes the binary metrics (melanoma positive) carry plain names; for K > 2 the
    plain accuracy / balanced_accuracy are multi-class, `macro_*` are macro averages over the K
    classes and melanoma-vs-rest binary metrics get a `melanoma_` prefix.
    """
    k = probs.shape[1]
    out: dict[str, float] = {"n": int(y.size)}
    if y.size == 0:
        return out
    if k > 2:
        out.update(metrics.macro_metrics(y, probs, pred))
    if mel is not None:
        binary = metrics.binary_metrics(y == mel, probs[:, mel], pred == mel)
        prefix = "" if k == 2 else "melanoma_"
        out.update({f"{prefix}{name}": v for name, v in binary.items()})
        out["ece_melanoma"] = calibration.ece_melanoma(y == mel, probs[:, mel], n_bins)
        out["brier_melanoma"] = calibration.brier_binary(y == mel, probs[:, mel])
    out["ece_top_label"] = calibration.ece_top_label(y, probs, n_bins)
    out["brier_multiclass"] = calibration.brier_multiclass(y, probs)
    out["log_loss"] = calibration.log_loss(y, probs)
    return out


def _with_ci(y, probs, pred, mel, cfg: EvalConfig) -> dict:
    values = block_metrics(y, probs, pred, mel, cfg.ece_bins)
    ci = metrics.bootstrap_intervals(
        lambda idx: {
            k: v
            for k, v in block_metrics(y[idx], probs[idx], pred[idx], mel, cfg.ece_bins).items()
            if k != "n" and k != "log_loss"
        },
        n_items=y.size,
        n_boot=cfg.bootstrap_n,
        seed=cfg.bootstrap_seed,
        level=cfg.confidence_level,
    )
    return {"values": values, "ci": ci}


def _calibration(test: Split, val: Split | None, cfg: EvalConfig) -> tuple[dict, dict]:
    """Fits calibrators on validation; returns ({method: Calibrator}, table of before/after)."""
    fitted = {}
    notes = []
    if val is not None:
        for method in cfg.calibration_methods:
            if method in BINARY_ONLY and test.probs.shape[1] != 2:
                notes.append(
                    f"{method} skipped: binary-only, model has {test.probs.shape[1]} classes"
                )
                continue
            try:
                fitted[method] = calibration.fit_calibrator(method, val.y, val.probs)
            except ValueError as err:  # e.g. one class in validation: report it, keep going.
                notes.append(f"{method} not fitted: {err}")
    else:
        notes.append("no validation predictions: calibrators not fitted")

    def row(split: Split, probs: np.ndarray) -> dict[str, float]:
        r = {
            "ece_top_label": calibration.ece_top_label(split.y, probs, cfg.ece_bins),
            "brier_multiclass": calibration.brier_multiclass(split.y, probs),
            "log_loss": calibration.log_loss(split.y, probs),
        }
        if split.mel is not None:
            r["ece_melanoma"] = calibration.ece_melanoma(
                split.y == split.mel, probs[:, split.mel], cfg.ece_bins
            )
            r["brier_melanoma"] = calibration.brier_binary(
                split.y == split.mel, probs[:, split.mel]
            )
        return r

    table: dict = {"test": {"uncalibrated": row(test, test.probs)}, "notes": notes, "params": {}}
    if val is not None:
        table["validation"] = {"uncalibrated": row(val, val.probs)}
    for method, cal in fitted.items():
        table["test"][method] = row(test, cal.apply(test.probs))
        table["validation"][method] = row(val, cal.apply(val.probs))
        table["params"][method] = cal.params
        if cal.params.get("at_search_bound"):
            notes.append(
                f"temperature scaling stopped near its widest search bound (T = "
                f"{cal.params['temperature']:.3g}): the validation probabilities carry almost no "
                "signal, so the calibrated ones are "
                + ("near uniform" if cal.params["temperature"] > 1 else "near 0 or 1")
            )
    return fitted, table


def evaluate_predictions(
    y_true,
    probs,
    image_ids: Sequence[str] | None,
    class_names: Sequence[str],
    out_dir,
    val_labels=None,
    val_probs=None,
    config: EvalConfig | dict | None = None,
    target_sensitivity: float | None = 0.9,
) -> dict:
    """Evaluates test predictions and writes the report folder.

    Computes every metric with bootstrap intervals, calibration before / after the calibrators
    fitted on validation (temperature scaling always), chooses the entropy threshold on
    validation by the paper's rule (on the temperature-scaled probabilities unless
    `config.reject_on_calibrated` is False), applies it frozen to test, and reports before /
    after rejection, coverage and the misdiagnoses prevented. Also chooses an operating point
    on validation: the P(melanoma) cut-off that reaches `target_sensitivity` there, reported on
    test beside the plain argmax (0.5) cut-off. Writes `metrics.json`, `predictions.csv`,
    `report.md`, `report.html` and the PNG plots into `out_dir`.

    Args:
        y_true: (N,) test class indices (binary: 1 = melanoma).
        probs: (N,), (N, 1) sigmoid P(melanoma) or (N, K) softmax test probabilities.
        image_ids: N image ids for the per-image CSV and the misdiagnosis lists
            (None: row numbers).
        class_names: the dataset's K class names in label order (binary: non_melanoma, melanoma).
        out_dir: report folder (created).
        val_labels: validation labels, for calibration and threshold selection.
        val_probs: validation probabilities, same classes as `probs`.
        config: `EvalConfig`, a dict of its fields, or None for the defaults.
        target_sensitivity: the validation sensitivity the operating point must reach, in
            (0, 1] (None: no operating point).

    Returns:
        The metrics dict that is written to metrics.json.

    Raises:
        ValueError: empty split, class count mismatch, bad probabilities or threshold.
    """
    from tfmelanoma.evaluation import report  # plots import matplotlib: only when writing.

    cfg = config if isinstance(config, EvalConfig) else EvalConfig.from_dict(config)
    if target_sensitivity is not None and not 0.0 < target_sensitivity <= 1.0:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target_sensitivity!r}")
    test = Split(y_true, probs, class_names, "test")
    ids = [str(i) for i in (range(test.y.size) if image_ids is None else image_ids)]
    if len(ids) != test.y.size:
        raise ValueError(f"test: {len(ids)} image ids but {test.y.size} predictions")
    if len(set(ids)) != len(ids):
        log.warning("test image ids are not unique; misdiagnosis lists may name an id twice")
    val = None
    if (val_labels is None) != (val_probs is None):
        raise ValueError("pass both val_labels and val_probs, or neither")
    if val_labels is not None:
        val = Split(val_labels, val_probs, class_names, "validation")

    fitted, cal_table = _calibration(test, val, cfg)
    rej_probs_test, rej_probs_val = test.probs, None if val is None else val.probs
    if cfg.reject_on_calibrated and "temperature" in fitted:
        rej_probs_test = fitted["temperature"].apply(test.probs)
        rej_probs_val = fitted["temperature"].apply(val.probs)
    entropy = uncertainty.normalized_entropy(rej_probs_test)

    sweep_val = None
    if cfg.entropy_threshold is not None:
        threshold, source = cfg.entropy_threshold, "fixed in config"
    elif val is not None:
        threshold, sweep_val = uncertainty.select_threshold(
            val.y, rej_probs_val, cfg.threshold_grid, cfg.min_coverage, cfg.ece_bins
        )
        source = "validation (min mean of ECE and Brier on retained predictions)"
    else:
        threshold, source = None, "none: no validation predictions, nothing rejected"
    sweep_test = uncertainty.threshold_sweep(
        test.y, rej_probs_test, cfg.threshold_grid, cfg.ece_bins, entropy
    )
    keep = (
        np.ones(test.y.size, bool)
        if threshold is None
        else uncertainty.retained_mask(entropy, threshold)
    )

    before = _with_ci(test.y, test.probs, test.pred, test.mel, cfg)
    after = _with_ci(test.y[keep], test.probs[keep], test.pred[keep], test.mel, cfg)
    wrong = test.pred != test.y
    rejection = {
        "threshold": threshold,
        "threshold_source": source,
        "entropy_from": "temperature-scaled probabilities"
        if rej_probs_test is not test.probs
        else "model probabilities",
        "coverage_test": float(keep.mean()),
        "coverage_validation": None
        if sweep_val is None
        else float(np.mean(uncertainty.normalized_entropy(rej_probs_val) <= threshold)),
        "n_rejected": int((~keep).sum()),
        "rejected_wrong": int((~keep & wrong).sum()),
        "rejected_correct": int((~keep & ~wrong).sum()),
        "entropy_range_test": [float(entropy.min()), float(entropy.max())],
    }
    temperature = fitted["temperature"].params["temperature"] if "temperature" in fitted else None
    rejection["notes"] = _rejection_notes(rejection, cfg, sweep_val is not None, temperature)
    result = {
        "n_test": int(test.y.size),
        "n_validation": None if val is None else int(val.y.size),
        "class_names": test.names,
        "positive_class": None if test.mel is None else test.names[test.mel],
        "config": cfg.to_dict(),
        "before_rejection": before,
        "after_rejection": after,
        "rejection": rejection,
        "calibration": cal_table,
        "operating_point": _operating_point(
            test, val, rej_probs_test, rej_probs_val, target_sensitivity, cfg
        ),
    }
    if test.mel is not None:
        pos = test.y == test.mel
        pred_pos = test.pred == test.mel
        mis_before = metrics.misdiagnoses(pos, pred_pos, ids)
        mis_after = metrics.misdiagnoses(
            pos[keep], pred_pos[keep], [i for i, k in zip(ids, keep, strict=True) if k]
        )
        # By position, not by id set: ids need not be unique across merged datasets.
        prevented = metrics.misdiagnoses(
            pos[~keep], pred_pos[~keep], list(np.asarray(ids, dtype=object)[~keep])
        )
        result["misdiagnoses"] = {
            "before_rejection": mis_before,
            "after_rejection": mis_after,
            "prevented": prevented,
        }
        rejection["false_positives_prevented"] = len(prevented["false_positive_ids"])
        rejection["false_negatives_prevented"] = len(prevented["false_negative_ids"])
    result["threshold_sweep"] = {"test": {k: v.tolist() for k, v in sweep_test.items()}}
    if sweep_val is not None:
        result["threshold_sweep"]["validation"] = {k: v.tolist() for k, v in sweep_val.items()}
    result["summary"] = _summary(result)
    curves = {"test": (test.y, rej_probs_test, entropy)}
    if val is not None:
        curves = {
            "validation": (val.y, rej_probs_val, uncertainty.normalized_entropy(rej_probs_val)),
            **curves,
        }
    report.write_report(
        Path(out_dir),
        result,
        test,
        ids,
        entropy,
        keep,
        threshold,
        fitted,
        curves,
        cfg,
    )
    return report.json_ready(result)


def _rejection_notes(
    rej: dict, cfg: EvalConfig, searched: bool, temperature: float | None
) -> list[str]:
    """Plain sentences for the cases where the rejection numbers alone would mislead."""
    notes = []
    t = rej["threshold"]
    low, high = calibration.TEMPERATURE_WIDEST
    if temperature is not None and temperature >= high / 10:
        notes.append(
            f"The temperature fitted on validation reached the top of its search range (T = "
            f"{temperature:.3g}, range up to {high:g}): "
            "the model's probabilities scored no better on validation than 0.5 for every "
            "image, so scaling flattens them towards 0.5 and every entropy towards 1, leaving "
            "little to tell apart. Temperature cannot undo a bias (class weights push "
            "P(melanoma) up); Platt scaling (calibration_methods, two classes) can, and a "
            "longer run on more data gives the model more to say."
        )
    elif temperature is not None and temperature <= low * 10:
        notes.append(
            f"The temperature fitted on validation reached the bottom of its search range (T = "
            f"{temperature:.3g}, range down to {low:g}): the "
            "model's probabilities are far too timid, and even the sharpest scaling allowed "
            "may not be enough."
        )
    if cfg.reject_on_calibrated and not rej["entropy_from"].startswith("temperature"):
        notes.append(
            "Entropy comes from the model's own probabilities: no temperature was fitted "
            "(it needs validation predictions)."
        )
    if t is None:
        return notes
    grid = cfg.threshold_grid
    if searched and t == grid[-1] and len(grid) > 1:
        notes.append(
            f"The threshold search on validation ended at its upper bound ({t:.2f}): no lower "
            f"threshold that keeps at least {cfg.min_coverage:.0%} of validation made the "
            "retained predictions better calibrated."
        )
    elif searched and t == grid[0] and len(grid) > 1:
        notes.append(
            f"The threshold search on validation ended at its lower bound ({t:.2f}): a lower "
            "threshold might score better; extend threshold_grid below it."
        )
    if rej["n_rejected"] == 0:
        lo, hi = rej["entropy_range_test"]
        notes.append(
            f"Nothing was rejected on test: every test entropy (between {lo:.3f} and {hi:.3f}) "
            f"is at or below the threshold {t:.2f}, so the metrics after rejection equal those "
            "before and the report shows them once."
        )
    elif rej["coverage_test"] == 0.0:
        notes.append("Every test prediction was rejected: no metric after rejection exists.")
    return notes


def _operating_point(
    test: Split, val: Split | None, probs_test, probs_val, target: float | None, cfg: EvalConfig
) -> dict:
    """The P(melanoma) cut-off chosen on validation for a target sensitivity, applied to test.

    The cut-off is taken on the same probabilities that rejection uses (temperature-scaled by
    default), frozen, and applied to every test image; the plain argmax (0.5 for two classes)
    results stay in `before_rejection`.
    """
    out: dict = {"target_sensitivity": target, "threshold": None}
    if target is None:
        out["note"] = "no target sensitivity given: no operating point chosen"
        return out
    if test.mel is None:
        out["note"] = "no melanoma class: no operating point"
        return out
    if val is None:
        out["note"] = "no validation predictions: the operating point is chosen on validation"
        return out
    mel = test.mel
    cut = metrics.threshold_for_sensitivity(val.y == mel, probs_val[:, mel], target)
    if not np.isfinite(cut):
        out["note"] = "no melanoma in validation: no operating point can be chosen"
        return out
    calibrated = probs_test is not test.probs
    out.update(
        threshold=cut,
        probabilities="temperature-scaled P(melanoma)" if calibrated else "model P(melanoma)",
        rule=f"melanoma when {'temperature-scaled ' if calibrated else ''}P(melanoma) >= {cut:.4g}",
        validation=metrics.binary_metrics(
            val.y == mel, probs_val[:, mel], probs_val[:, mel] >= cut
        ),
    )
    y, p = test.y == mel, probs_test[:, mel]
    keys = ("sensitivity", "specificity", "precision", "balanced_accuracy")

    def block(idx) -> dict[str, float]:
        m = metrics.binary_metrics(y[idx], p[idx], p[idx] >= cut)
        return {k: m[k] for k in keys}

    everything = np.arange(y.size)
    out["test"] = {
        "values": block(everything),
        "ci": metrics.bootstrap_intervals(
            block, y.size, cfg.bootstrap_n, cfg.bootstrap_seed, cfg.confidence_level
        ),
    }
    return out


def _summary(result: dict) -> dict:
    """A flat dict of the headline numbers, for grids and logs."""
    b, a = result["before_rejection"]["values"], result["after_rejection"]["values"]
    keys = (
        "accuracy",
        "balanced_accuracy",
        "sensitivity",
        "specificity",
        "auc_roc",
        "f1",
        "macro_f1",
        "ece_top_label",
        "brier_melanoma",
        "brier_multiclass",
    )
    s = {"n_test": result["n_test"], "n_validation": result["n_validation"]}
    s.update({k: b[k] for k in keys if k in b})
    # Every before-key gets an after-key; NaN (JSON null) when nothing was retained.
    s.update({f"{k}_after_rejection": a.get(k, float("nan")) for k in keys if k in b})
    ci = result["before_rejection"]["ci"]
    s["confidence_level"] = result["config"]["confidence_level"]
    for k in keys:  # flat keys, so grids and logs read them as plain numbers
        if k in s and k in ci:
            s[f"{k}_ci_low"], s[f"{k}_ci_high"] = ci[k]
    s["threshold"] = result["rejection"]["threshold"]
    s["rejection_note"] = " ".join(result["rejection"]["notes"]) or None
    s["coverage"] = result["rejection"]["coverage_test"]
    s["n_rejected"] = result["rejection"]["n_rejected"]
    temp = result["calibration"]["test"].get("temperature")
    if temp:
        s["ece_top_label_temperature"] = temp["ece_top_label"]
        s["temperature"] = result["calibration"]["params"]["temperature"]["temperature"]
    op = result["operating_point"]
    s["target_sensitivity"] = op["target_sensitivity"]
    s["operating_threshold"] = op["threshold"]
    s["operating_probabilities"] = op.get("probabilities")
    if "test" in op:
        for k in ("sensitivity", "specificity"):
            s[f"operating_{k}"] = op["test"]["values"][k]
            low_high = op["test"]["ci"].get(k)
            if low_high:
                s[f"operating_{k}_ci_low"], s[f"operating_{k}_ci_high"] = low_high
            s[f"operating_{k}_validation"] = op["validation"][k]
    return s
