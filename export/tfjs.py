"""`python -m export.tfjs`: a trained Keras model → TF.js graph model + meta.json + model.js.

    python -m export.tfjs --model runs/webdemo_meshnet --out webdemo/models/meshnet \\
        --quantization float32

`--model` is a training run folder (or a .keras file); the entropy threshold, temperature and
metrics come from the run's `evaluation/metrics.json` only. BatchNorm is folded before the
conversion. Writes into `--out` (refused when it is not empty, unless `--force`): `model.json` and its weight shard (the standard TF.js graph model),
`meta.json` (class names, input size, preprocessing, entropy threshold and temperature, training
data, metrics, version, parity result) and `model.js` (all of it in one script for the page).
Then checks Keras/TF.js parity on the web demo's gallery images plus random images and fails
(exit 1) when the bound for the quantisation is exceeded.

Nothing can leave `--out` half-replaced: the model, its output and the metrics file are checked
before `--out` is touched; the export is written into a temporary sibling folder, its parity
checked there, and only then swapped in (old folder renamed aside, new one renamed in, old one
removed), under a lock on the parent folder so two exports cannot interleave.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tfmelanoma import fsio
from tfmelanoma.cli import OneLineErrorParser, raise_if_interrupted, run_command
from tfmelanoma.errors import RunFolderError, TfmelanomaError
from tfmelanoma.logging_utils import get_logger, quiet_tensorflow, setup_logging

PROG = "python -m export.tfjs"
log = get_logger(__name__)

CLASS_NAMES_2 = ["non_melanoma", "melanoma"]
# Documented defaults, used only without an evaluation metrics.json: no temperature scaling, and
# "uncertain" when the normalised entropy exceeds 0.8 (P(melanoma) roughly in 0.24-0.76).
DEFAULT_TEMPERATURE = 1.0
DEFAULT_ENTROPY_THRESHOLD = 0.8
PREPROCESSING = {
    "decode": "RGB, 8 bit; EXIF orientation applied by the browser",
    "resize": "bilinear",
    "half_pixel_centers": True,
    "antialias": False,
    "crop": "none (whole image, aspect ratio not kept)",
    "scale": "none: float32 RGB in [0, 255]; the model normalises inside itself",
    "alpha": "flattened onto white",
    "grayscale": "replicated to 3 channels",
}


class MetricsFileError(TfmelanomaError, ValueError):
    """An evaluation metrics.json without a value the page needs; names the file and the key."""


def _get(metrics: dict, path: Path, *keys: str):
    """`metrics[k1][k2]...`, or MetricsFileError naming `path` and the missing key."""
    obj = metrics
    for i, k in enumerate(keys):
        if not isinstance(obj, dict) or k not in obj:
            raise MetricsFileError(
                f"{path}: no {'.'.join(keys[: i + 1])!r}; expected the evaluation report that "
                "`python -m tfmelanoma.train` writes into <run>/evaluation/metrics.json "
                "(tfmelanoma.evaluation.evaluate_predictions)"
            )
        obj = obj[k]
    return obj


def _number(metrics: dict, path: Path, *keys: str) -> float:
    value = _get(metrics, path, *keys)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise MetricsFileError(
            f"{path}: {'.'.join(keys)} is {value!r}, expected a number"
            + (" (the run had no validation split to choose it on)" if value is None else "")
        )
    return float(value)


def training_data(run_dir: Path | None) -> dict | None:
    """What a training run folder says it was trained on (its `data.json`), or None."""
    path = run_dir / "data.json" if run_dir else None
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not JSON ({err})") from None
    keys = ("train", "test", "label", "sizes", "class_counts")
    return {key: data[key] for key in keys if key in data} or None


def find_metrics(run_dir: Path | None, explicit: Path | None) -> Path | None:
    """`--metrics`; else the run's `evaluation/metrics.json` (the report that
    `python -m tfmelanoma.train` writes); else None (a bare .keras file: documented defaults).

    Raises:
        FileNotFoundError: `--metrics` names no file.
        MetricsFileError: the run evaluated several test sets (`evaluation/<name>/metrics.json`
            each): which one to read is the user's choice, given with `--metrics`.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise FileNotFoundError(
                f"--metrics {explicit}: no such file (expected an evaluation metrics.json)"
            )
        return explicit
    if run_dir is None:
        return None
    path = run_dir / "evaluation" / "metrics.json"
    if path.is_file():
        return path
    several = sorted(p.parent.name for p in (run_dir / "evaluation").glob("*/metrics.json"))
    if several:
        raise MetricsFileError(
            f"{run_dir}/evaluation holds one report per test set ({', '.join(several)}); "
            f"pass --metrics {run_dir}/evaluation/<name>/metrics.json"
        )
    log.warning("%s: no evaluation/metrics.json; the documented defaults are used", run_dir)
    return None


def uncertainty_settings(metrics: dict | None, source: Path | None) -> dict:
    """Entropy threshold and temperature from an evaluation report, else the documented defaults.

    Reads `tfmelanoma.evaluation`'s metrics.json: `rejection.threshold`,
    `rejection.entropy_from` and `calibration.params.temperature.temperature`.

    Raises:
        MetricsFileError: one of those keys is missing or not a number (file and key named).
    """
    settings = {
        "entropy": "normalised Shannon entropy H(p) / ln K, in [0, 1]",
        "rule": "uncertain when entropy > entropy_threshold",
        "entropy_threshold": DEFAULT_ENTROPY_THRESHOLD,
        "temperature": DEFAULT_TEMPERATURE,
        "calibrated_probability": "softmax(ln p / temperature)",
        "reject_on_calibrated": False,
        "source": "documented defaults (no evaluation metrics.json)",
    }
    if metrics is None:
        return settings
    entropy_from = _get(metrics, source, "rejection", "entropy_from")
    settings.update(
        entropy_threshold=_number(metrics, source, "rejection", "threshold"),
        temperature=_number(metrics, source, "calibration", "params", "temperature", "temperature"),
        # the evaluation rejects on temperature-scaled probabilities by default (EvalConfig)
        reject_on_calibrated=str(entropy_from).startswith("temperature"),
        source=str(source),
    )
    return settings


def build_meta(
    model,
    name: str,
    quantization: str,
    model_dir: Path,
    metrics_path: Path | None,
    training: str | dict | None,
    gate: dict | None = None,
) -> dict:
    """The meta.json dict (everything the page needs besides the graph and weights)."""
    import tfmelanoma
    from export.convert import weights_digest

    metrics = json.loads(metrics_path.read_text()) if metrics_path else None
    _, h, w, c = model.input_shape
    k = int(model.output_shape[-1])
    if k == 2:
        class_names = CLASS_NAMES_2
    elif k == 1:
        raise ValueError(
            f"{name}: one sigmoid output; the web demo expects softmax over {CLASS_NAMES_2}"
        )
    else:
        from tfmelanoma.labels import HARMONISED_CLASSES

        class_names = list(HARMONISED_CLASSES)
    # The evaluation report's headline numbers ("summary": flat name -> value).
    summary = _get(metrics, metrics_path, "summary") if metrics is not None else {}
    shown = {
        key: val
        for key, val in summary.items()
        if isinstance(val, (int, float, str)) and not isinstance(val, bool)
    }
    training_info = {"data": training} if training else {}
    weight_bytes = sum(p.stat().st_size for p in model_dir.glob("group*-shard*of*.bin"))
    meta = {
        "format_version": 1,
        "name": name,
        "model_version": f"{name}-{tfmelanoma.__version__}-{quantization}-{weights_digest(model_dir)}",
        "created_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "class_names": class_names,
        "positive_class": "melanoma",
        "input": {
            "height": h,
            "width": w,
            "channels": c,
            "dtype": "float32",
            "range": [0, 255],
            "color": "RGB",
        },
        "preprocessing": PREPROCESSING,
        "uncertainty": uncertainty_settings(metrics, metrics_path),
        "quantization": quantization,
        "weights_bytes": weight_bytes,
        "params": int(model.count_params()),
        "training": training_info or "not recorded",
        "metrics": shown or "not recorded (no metrics.json)",
        "metrics_source": str(metrics_path) if metrics_path else None,
        "converter": "tensorflowjs 4.22.0 SavedModel converter (vendored in export/_vendor)",
        "tfmelanoma_version": tfmelanoma.__version__,
    }
    from export import ood

    meta["cam"] = ood.cam_meta(model, model_dir)
    meta["gate"] = ood.gate_meta(gate, meta["cam"])
    return meta


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = OneLineErrorParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=fsio.expand, required=True, help=".keras file or run folder")
    ap.add_argument(
        "--out", type=fsio.expand, required=True, help="output folder, e.g. webdemo/models/meshnet"
    )
    ap.add_argument(
        "--force",
        action="store_true",
        help="replace a non-empty --out (the old export stays until the new one is complete)",
    )
    ap.add_argument("--quantization", choices=("float32", "float16", "uint8"), default="float32")
    ap.add_argument(
        "--metrics", type=fsio.expand, help="evaluation metrics.json (default: the run folder's)"
    )
    ap.add_argument(
        "--gate", type=fsio.expand, help="out-of-distribution gate.json (default: the run folder's)"
    )
    ap.add_argument("--name", help="model name shown on the page (default: the Keras model name)")
    ap.add_argument(
        "--training-data",
        help="describes the training data in meta.json (default: the run folder's data.json)",
    )
    ap.add_argument(
        "--parity-images",
        type=fsio.expand,
        nargs="*",
        help="images for the parity check (default: webdemo/gallery/*.jpg)",
    )
    ap.add_argument(
        "--webdemo",
        type=fsio.expand,
        help="webdemo folder with node_modules (default: beside export/)",
    )
    ap.add_argument(
        "--skip-parity", action="store_true", help="do not run the Keras/TF.js parity check"
    )
    return ap.parse_args(argv)


def check_model(model, label: str) -> None:
    """Refuses a model the page cannot run: several inputs/outputs, a free input size, an
    output that is not a softmax over 2 or the harmonised classes.

    Raises:
        ValueError: naming `label` (the --model value) and what to change.
    """
    import numpy as np

    from tfmelanoma.labels import HARMONISED_CLASSES

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"{label}: the web demo needs one image input and one probability output")
    if None in model.input_shape[1:4]:
        raise ValueError(
            f"{label}: input size {model.input_shape} is not fixed; "
            "rebuild with input_shape=(H, W, 3)"
        )
    k = int(model.output_shape[-1])
    if k == 1:
        raise ValueError(
            f"{label}: one sigmoid output; the web demo expects softmax over {CLASS_NAMES_2}"
        )
    if k not in (2, len(HARMONISED_CLASSES)):
        raise ValueError(
            f"{label}: {k} outputs; the web demo expects softmax over {CLASS_NAMES_2} "
            f"or the {len(HARMONISED_CLASSES)} harmonised classes"
        )
    # Probabilities, not logits: the page shows them and thresholds their entropy as they are.
    x = np.random.default_rng(0).uniform(0, 255, (2, *model.input_shape[1:])).astype("float32")
    p = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    if not (np.isfinite(p).all() and (p >= -1e-6).all() and np.allclose(p.sum(-1), 1, atol=1e-3)):
        raise ValueError(
            f"{label}: the outputs are not probabilities (rows sum to {p.sum(-1).round(3)}); "
            "end the model with a softmax activation"
        )


def _validate(args) -> tuple:
    """Everything that can be checked before `--out` is touched.

    Returns:
        (model, metrics path or None, training data description or None, webdemo folder,
        the out-of-distribution gate.json as a dict or None).
    """
    from export import parity
    from tfmelanoma.models.loading import load_model, resolve_model_path

    file, run_dir = resolve_model_path(fsio.expand(args.model))
    model = load_model(file)
    check_model(model, f"--model {args.model}")
    metrics_path = find_metrics(run_dir, args.metrics)
    if metrics_path is not None:
        try:
            metrics = json.loads(metrics_path.read_text())
        except ValueError as err:
            raise ValueError(f"{metrics_path}: not JSON ({err}); pass --metrics FILE") from None
        uncertainty_settings(metrics, metrics_path)  # every key the page needs is there
        _get(metrics, metrics_path, "summary")
    training = args.training_data or training_data(run_dir)
    gate_path = args.gate or (run_dir / "gate.json" if run_dir else None)
    if args.gate is not None and not args.gate.is_file():
        raise FileNotFoundError(f"--gate {args.gate}: no such file (python -m export.fit_gate)")
    gate = json.loads(gate_path.read_text()) if gate_path and gate_path.is_file() else None
    webdemo = args.webdemo or parity.WEBDEMO_DIR
    if not args.skip_parity:
        parity.check_node(webdemo)
    return model, metrics_path, training, webdemo, gate


def fold_for_export(model):
    """The model with every Conv/Dense -> BatchNorm pair folded into one layer, and how many
    BatchNorm layers went (fewer ops and weights in TF.js, same outputs up to float rounding).

    A model that cannot be folded (not functional) is exported as it is.
    """
    import keras

    from tfmelanoma.models.bn_folding import fold_batchnorm

    try:
        folded = fold_batchnorm(model)
    except ValueError as err:
        log.info("BatchNorm not folded: %s", err)
        return model, 0

    def count(m):
        return sum(isinstance(x, keras.layers.BatchNormalization) for x in m.layers)

    return folded, count(model) - count(folded)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file; expected a folder for the export")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RunFolderError(
            f"--out {out} is not empty; pass --force to replace the export there "
            "(it is kept until the new one is complete) or choose another folder"
        )


def _swap_in(new: Path, out: Path) -> None:
    """Moves the finished export `new` to `out`; the old `out` is removed only after that."""
    old = None
    if out.exists():
        old = new.with_name(new.name + ".old")
        os.replace(out, old)
    try:
        os.replace(new, out)
    except OSError:
        if old is not None:
            os.replace(old, out)  # put the old export back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_model(args, model, metrics_path, training, webdemo, gate=None) -> tuple[dict, int]:
    """Converts into a temporary sibling of `--out`, checks parity there, then swaps it in.

    Returns:
        (meta, exit status: 0, or 1 when parity failed and `--out` was left as it was).
    """
    from export import convert, parity

    out = fsio.expand(args.out)
    name = args.name or model.name
    with fsio.folder_lock(out.parent, "folder of exports"):
        _check_out(out, args.force)
        for stale in out.parent.glob(f".{out.name}.export-*"):
            # left by an export killed mid-way; the lock says no live export owns it
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
        try:
            log.info("converting %s (%s weights) into %s", args.model, args.quantization, out)
            exported, n_folded = fold_for_export(model)
            convert.convert_keras(exported, tmp, args.quantization)
            meta = build_meta(exported, name, args.quantization, tmp, metrics_path, training, gate)
            meta["batchnorm_folded"] = n_folded
            if not args.skip_parity:
                images = args.parity_images
                if images is None:
                    images = sorted((webdemo / "gallery").glob("*.jpg"))
                # against the model as trained (before folding): the whole export is checked
                result = parity.check_parity(model, tmp, args.quantization, images, webdemo)
                meta["parity"] = result.as_dict()
                log.debug("parity: %s", result.as_dict())
                if not result.passed:
                    kept = "left as it was" if out.exists() else "not written"
                    print(
                        f"{PROG}: error: Keras/TF.js parity failed: max |dP| = "
                        f"{result.max_abs_diff:.3g} (bound {result.bound}), decisions equal: "
                        f"{result.decisions_equal}; {out} {kept}",
                        file=sys.stderr,
                    )
                    return meta, 1
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            convert.write_model_js(tmp, meta)
            raise_if_interrupted()  # a Ctrl-C Python dropped still keeps the old export
            _swap_in(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return meta, 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns 0 on success, 1 when the parity check fails, 2 on
    bad input (nothing in `--out` is touched then)."""
    args = parse_args(argv)
    quiet_tensorflow()
    setup_logging()
    return run_command(
        PROG,
        lambda: _run(args),
        on_interrupt=f"{args.out} is as it was (a new export is swapped in only once complete)",
    )


def _run(args) -> int:
    model, metrics_path, training, webdemo, gate = _validate(args)
    meta, status = export_model(args, model, metrics_path, training, webdemo, gate)
    if status:
        return status
    parity_line = (
        f"parity with Keras on {meta['parity']['n_images']} images: max |dP| "
        f"{meta['parity']['max_abs_diff']:.2g} (bound {meta['parity']['bound']}), "
        f"decisions equal: {meta['parity']['decisions_equal']}"
        if "parity" in meta
        else "parity not checked (--skip-parity)"
    )
    print(
        f"wrote {args.out}: model.json + weights ({meta['weights_bytes'] / 1e6:.2f} MB, "
        f"{args.quantization}), meta.json, model.js\n{parity_line}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
