"""`python -m export.fit_gate`: fits the web demo's out-of-distribution gate (see export.ood).

    python -m export.fit_gate --model webdemo/models/meshnet-run/model.keras \\
        --data ../shared/data/kaggle_fanconic --uda1 ../shared/data/isic_archive_uda1 \\
        --out webdemo/models/meshnet-run/gate.json

Uses the demo model's own splits (`export.train_demo_model`: kaggle_fanconic train/ 85/15,
stratified, seed 0; test/ held out): the detector is fitted on the training part, its threshold
chosen on validation against the first half of the generated OOD inputs, and the rates reported
on test (and on `--uda1` images, another dermoscopy source) against the second half.
`python -m export.tfjs` copies gate.json from the run folder into meta.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from export import ood
from tfmelanoma.fsio import expand
from tfmelanoma.logging_utils import get_logger, quiet_tensorflow, setup_logging

log = get_logger(__name__)


def _uda1_paths(root: Path, n: int) -> tuple[list[str], list[str]]:
    """Two disjoint sets of `n` UDA-1 images from the end of the id order (the web gallery
    takes the first ids: they stay out of both)."""
    paths = [str(p) for p in sorted((root / "images").glob("ISIC_*.jpg"))]
    if 2 * n > len(paths) - 20:
        raise ValueError(f"{root}: {len(paths)} images, too few for two parts of {n}")
    return paths[-2 * n : -n], paths[-n:]


def fit(
    model,
    layer: str,
    data: Path,
    uda1: Path | None,
    n_uda1: int,
    max_reject: float = 0.02,
    seed: int = 0,
) -> dict:
    """Fits the gate and measures it; returns the gate.json dict."""
    from sklearn.model_selection import train_test_split

    from export.train_demo_model import list_split, load_images

    size = int(model.input_shape[1])
    paths, labels = list_split(data, "train")
    tr_p, va_p, y_tr, _ = train_test_split(
        paths, labels, test_size=0.15, stratify=labels, random_state=seed
    )
    te_p, _ = list_split(data, "test")
    sets = {"train": tr_p, "validation": va_p, "test": te_p}
    if uda1 is not None:
        sets["uda1_validation"], sets["uda1_test"] = _uda1_paths(uda1, n_uda1)
    x = {k: load_images(v, size) for k, v in sets.items()}
    x_ood, kinds = ood.synthetic_ood(size, seed)
    # alternate within each kind, so every kind is in both halves
    kinds_arr = np.array(kinds)
    half = np.zeros(len(kinds), bool)
    for kind in set(kinds):
        idx = np.flatnonzero(kinds_arr == kind)
        half[idx[::2]] = True
    checks = ood.fit_image_checks(x["train"])
    pooled = {k: ood.features(model, layer, v)[1] for k, v in x.items()}
    pooled_ood = ood.features(model, layer, x_ood)[1]
    maha = ood.fit_mahalanobis(pooled["train"], y_tr)
    dist = {k: ood.mahalanobis(v, maha) for k, v in pooled.items()}
    d_ood = ood.mahalanobis(pooled_ood, maha)
    img_fail = {k: ood.image_check_failures(ood.image_stats(v), checks) for k, v in x.items()}
    img_fail_ood = ood.image_check_failures(ood.image_stats(x_ood), checks)
    # the threshold sees only what the image checks let through
    val_sets = [k for k in ("validation", "uda1_validation") if k in x]
    d_val = np.concatenate([dist[k][~img_fail[k]] for k in val_sets])
    threshold = ood.choose_threshold(d_val, d_ood[half & ~img_fail_ood], max_reject)
    rejected = {k: img_fail[k] | (dist[k] > threshold) for k in x}
    rejected_ood = img_fail_ood | (d_ood > threshold)
    report = {
        f"{k}_wrongly_rejected": {
            "n": int(len(v)),
            "rate": float(v.mean()),
            "by_image_checks": float(img_fail[k].mean()),
        }
        for k, v in rejected.items()
    }
    for name, part in (("ood_fit_half_caught", half), ("ood_test_half_caught", ~half)):
        by_kind = {}
        for kind in dict.fromkeys(kinds):
            sel = part & (np.array(kinds) == kind)
            by_kind[kind] = f"{int(rejected_ood[sel].sum())}/{int(sel.sum())}"
        report[name] = {
            "n": int(part.sum()),
            "rate": float(rejected_ood[part].mean()),
            "by_image_checks": float(img_fail_ood[part].mean()),
            "by_kind": by_kind,
        }
    return {
        "image_checks": checks,
        "mahalanobis": {
            "features": f"global average of {layer} (the penultimate features)",
            "means": maha["means"].round(6).tolist(),
            "precision": maha["precision"].round(6).tolist(),
            "threshold": threshold,
            "rule": "out of distribution when min over classes of sqrt((f-mu)^T P (f-mu)) > threshold",
        },
        "report": report,
        "fitted_on": f"{data} train part (n={len(tr_p)}); threshold on {' + '.join(val_sets)} "
        f"(at most {max_reject:.0%} rejected) vs the first half of export.ood.synthetic_ood",
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=expand, required=True)
    ap.add_argument("--data", type=expand, required=True, help="kaggle_fanconic folder")
    ap.add_argument("--uda1", type=expand, help="isic_archive_uda1 folder (extra in-distribution)")
    ap.add_argument("--n-uda1", type=int, default=250, help="UDA-1 images per part")
    ap.add_argument(
        "--max-reject", type=float, default=0.02, help="in-distribution rejection allowed"
    )
    ap.add_argument("--layer", default=None, help="feature layer (default: the registry's)")
    ap.add_argument("--out", type=expand, required=True)
    args = ap.parse_args(argv)
    quiet_tensorflow()
    setup_logging()
    import keras

    from tfmelanoma.evaluation.gradcam import resolve_layer_name

    model = keras.saving.load_model(args.model, safe_mode=True, compile=False)
    layer = resolve_layer_name(model, args.layer, "meshnet")
    t0 = time.time()
    gate = fit(model, layer, args.data, args.uda1, args.n_uda1, args.max_reject)
    gate["layer"] = layer
    gate["command"] = "python -m export.fit_gate " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    args.out.write_text(json.dumps(gate, indent=1) + "\n")
    log.info("gate fitted in %.0f s: %s", time.time() - t0, json.dumps(gate["report"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
