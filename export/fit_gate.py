"""`python -m export.fit_gate`: fits the web demo's out-of-distribution gate (see export.ood).

    python -m export.fit_gate --run runs/webdemo_meshnet --uda1 ../shared/data/isic_archive_uda1

Uses the run's own splits, as `python -m tfmelanoma.train` made them from its `config.yaml`
(the same merge, seed and pixels): the detector is fitted on the training split, its threshold
chosen on validation against the first half of the generated OOD inputs, and the rates reported
on test (and on `--uda1` images, another dermoscopy source) against the second half. Writes
`<run>/gate.json`, which `python -m export.tfjs --model <run>` copies into meta.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from export import ood
from tfmelanoma.fsio import atomic_write_text, expand
from tfmelanoma.logging_utils import get_logger, quiet_tensorflow, setup_logging

log = get_logger(__name__)


def _uda1_paths(root: Path, n: int) -> tuple[list[str], list[str]]:
    """Two disjoint sets of `n` UDA-1 images from the end of the id order (the web gallery
    takes the first ids: they stay out of both)."""
    paths = [str(p) for p in sorted((root / "images").glob("ISIC_*.jpg"))]
    if 2 * n > len(paths) - 20:
        raise ValueError(f"{root}: {len(paths)} images, too few for two parts of {n}")
    return paths[-2 * n : -n], paths[-n:]


def load_files(paths: list[str], size: int) -> np.ndarray:
    """Image files -> float32 (N, size, size, 3), decoded and resized as in training."""
    import tensorflow as tf

    from tfmelanoma.data.image_ops import decode_tf, resize_tf

    ds = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda p: resize_tf(decode_tf(tf.io.read_file(p)), size), num_parallel_calls=2
    )
    return np.stack([x.numpy() for x in ds]).astype(np.float32)


def load_split(view, config) -> tuple[np.ndarray, np.ndarray]:
    """A run's split (`tfmelanoma.training.data.Splits` view) -> (images, labels), in order."""
    from tfmelanoma.data.pipeline import eval_dataset

    ds = eval_dataset(
        view.as_tf_dataset(),
        image_size=config.data.image_size,
        batch_size=256,
        num_classes=config.model.num_classes,
        label_key=config.data.label,
        cache=False,
    )
    x, y = zip(*((b.numpy(), t.numpy()) for b, t in ds), strict=True)
    return np.concatenate(x).astype(np.float32), np.concatenate(y).argmax(-1)


def fit(
    model,
    layer: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    uda1: Path | None,
    n_uda1: int,
    max_reject: float = 0.02,
    seed: int = 0,
    described: str = "the run's",
) -> dict:
    """Fits the gate and measures it; returns the gate.json dict.

    Args:
        model: the trained classifier.
        layer: the feature layer (its global average is the detector's input).
        splits: "train", "validation", "test" -> (images float32 [0, 255], labels).
        uda1: the isic_archive_uda1 folder (extra in-distribution images), or None.
        n_uda1: UDA-1 images per part (threshold part, report part).
        max_reject: in-distribution validation images the threshold may reject.
        seed: of the generated OOD inputs.
        described: names the data in `fitted_on`.
    """
    size = int(model.input_shape[1])
    x = {k: v[0] for k, v in splits.items()}
    y_tr = splits["train"][1]
    if uda1 is not None:
        val_part, test_part = _uda1_paths(uda1, n_uda1)
        x["uda1_validation"], x["uda1_test"] = (
            load_files(val_part, size),
            load_files(test_part, size),
        )
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
        "fitted_on": f"{described} training split (n={len(y_tr)}); threshold on "
        f"{' + '.join(val_sets)} "
        f"(at most {max_reject:.0%} rejected) vs the first half of export.ood.synthetic_ood",
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    from tfmelanoma.cli import OneLineErrorParser, run_command

    ap = OneLineErrorParser(prog="python -m export.fit_gate", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--run", type=expand, required=True, help="training run folder (best.keras, config.yaml)"
    )
    ap.add_argument("--uda1", type=expand, help="isic_archive_uda1 folder (extra in-distribution)")
    ap.add_argument("--n-uda1", type=int, default=250, help="UDA-1 images per part")
    ap.add_argument(
        "--max-reject", type=float, default=0.02, help="in-distribution rejection allowed"
    )
    ap.add_argument("--layer", default=None, help="feature layer (default: the registry's)")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a data path of the run's config, e.g. data.data_dir=... (where the run's "
        "datasets are prepared here)",
    )
    ap.add_argument("--out", type=expand, help="gate.json to write (default: <run>/gate.json)")
    args = ap.parse_args(argv)
    quiet_tensorflow()
    setup_logging()
    out = args.out or args.run / "gate.json"
    return run_command(
        "python -m export.fit_gate",
        lambda: _fit_and_write(args, argv, out),
        on_interrupt=f"{out} is as it was (written in one step at the end)",
    )


def _fit_and_write(args, argv, out: Path) -> int:
    from tfmelanoma.cli import raise_if_interrupted

    gate = _fit_run(args)
    gate["command"] = "python -m export.fit_gate " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    raise_if_interrupted()  # a Ctrl-C Python dropped while fitting still keeps the old gate
    atomic_write_text(out, json.dumps(gate, indent=1) + "\n")
    log.info("wrote %s: %s", out, json.dumps(gate["report"], indent=1))
    return 0


def _fit_run(args) -> dict:
    from tfmelanoma.config import ConfigError, load_config
    from tfmelanoma.evaluation.gradcam import resolve_layer_name
    from tfmelanoma.models.loading import load_model, resolve_model_path
    from tfmelanoma.training.data import load_splits

    data_keys = ("data.data_dir=", "data.manual_dir=")
    for item in args.overrides:
        if not item.startswith(data_keys):
            raise ConfigError(f"--set {item}: only data.data_dir and data.manual_dir may change")
    run_dir = args.run
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(
            f"--run {run_dir}: expected a training run folder with best.keras and config.yaml "
            "(python -m tfmelanoma.train)"
        )
    file, _ = resolve_model_path(run_dir)
    config = load_config(str(run_dir / "config.yaml"), args.overrides)
    model = load_model(file)
    layer = resolve_layer_name(model, args.layer, config.model.name)
    t0 = time.time()
    splits = load_splits(config)
    data = {
        name: load_split(getattr(splits, name), config) for name in ("train", "validation", "test")
    }
    described = f"{', '.join(config.data.train)} ({run_dir / 'config.yaml'})"
    gate = fit(
        model, layer, data, args.uda1, args.n_uda1, args.max_reject, config.run.seed, described
    )
    gate["layer"] = layer
    log.info("gate fitted in %.0f s", time.time() - t0)
    return gate


if __name__ == "__main__":
    raise SystemExit(main())
