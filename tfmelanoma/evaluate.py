"""Evaluate a trained classifier: `python -m tfmelanoma.evaluate --model RUN|FILE.keras --out DIR`.

Writes the report folder of `tfmelanoma.evaluation.evaluate_predictions` (metrics.json,
predictions.csv, report.md / report.html, PNG plots) for a test set given as a prepared dataset
(`--test isic2017`) or a folder of class sub-folders (`--images-dir`), optionally with TTA, an
ensemble of several models, and Grad-CAM overlays of the worst mistakes.

Runs on any Keras backend: on TensorFlow, datasets are read with tf.data; on the others
(`KERAS_BACKEND=jax`, where TensorFlow need not be installed) through `tfds.data_source`
(datasets prepared as ArrayRecord), decoded and resized by the NumPy twins of the same ops
(`tfmelanoma.data.image_ops`). `--images-dir` files are read with Pillow on every backend.
Grad-CAM needs the TensorFlow backend.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfmelanoma import fsio
from tfmelanoma.cli import (
    HelpFormatter,
    OneLineErrorParser,
    run_command,
)
from tfmelanoma.fsio import expand
from tfmelanoma.logging_utils import get_logger, quiet_tensorflow, setup_logging

PROG = "python -m tfmelanoma.evaluate"
log = get_logger("tfmelanoma.evaluate")

EXAMPLES = f"""examples:
  {PROG} --model runs/meshnet_sample --out reports/meshnet        # the run's own test split
  {PROG} --model runs/a --test kaggle_fanconic --out reports/a --tta
  {PROG} --model a.keras --model b.keras --ensemble vote --images-dir test/ \\
      --class-map benign=non_melanoma,malignant=melanoma --val-images-dir val/ --out reports/ab
"""


def _path_text(text: str) -> str:
    """A path option passed on as text, `~` and `$VARS` expanded."""
    return str(expand(text))


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="RUN|FILE",
        type=expand,
        help="run folder (best.keras + config.yaml) or .keras file; repeat for an ensemble",
    )
    p.add_argument(
        "--out", type=expand, required=True, help="report folder to write (new or empty)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="write the report into a non-empty --out"
    )
    src = p.add_argument_group("test data (default: the run's own test split)")
    src.add_argument("--test", help="dataset name, e.g. isic2017 or sample (prepared TFDS dataset)")
    src.add_argument("--split", default="test", help="split of --test (default: %(default)s)")
    src.add_argument(
        "--images-dir", type=expand, help="folder of class sub-folders of images, instead of --test"
    )
    src.add_argument(
        "--data-dir",
        type=_path_text,
        help="TFDS data dir (default: the run's, else the TFDS default)",
    )
    src.add_argument(
        "--manual-dir", type=_path_text, help="manual downloads, to prepare a dataset on first use"
    )
    src.add_argument(
        "--class-map", help="folder=class pairs for --images-dir, e.g. benign=non_melanoma"
    )
    src.add_argument(
        "--limit",
        type=int,
        help="evaluate only the first N test images, in dataset order (smoke runs)",
    )
    val = p.add_argument_group("validation data (temperature scaling and the entropy threshold)")
    val.add_argument(
        "--val",
        metavar="DATASET[:SPLIT]",
        help="validation dataset (split default: validation; for a dataset without one, the "
        "merge step's patient-grouped validation split)",
    )
    val.add_argument(
        "--val-images-dir", type=expand, help="folder of class sub-folders for validation"
    )
    val.add_argument("--no-val", action="store_true", help="use no validation data (no rejection)")
    m = p.add_argument_group("model and prediction")
    m.add_argument("--class-names", help="comma-separated class names in model-output order")
    m.add_argument(
        "--label", choices=("label", "harmonised_diagnosis"), help="label feature to compare with"
    )
    m.add_argument(
        "--image-size",
        type=int,
        help="input size of every model (default: each run's data.image_size, else its model's "
        "input; an ensemble's models may differ: each is fed at its own size)",
    )
    m.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    m.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation (8 zoomed corner crops + mirrors)",
    )
    m.add_argument(
        "--tta-beta",
        type=float,
        default=0.4,
        help="weight of the plain prediction (default: %(default)s)",
    )
    m.add_argument("--tta-zoom", type=float, default=1.05, help="default: %(default)s")
    m.add_argument(
        "--mc-dropout",
        type=int,
        default=0,
        metavar="S",
        help="predict the mean of S Monte-Carlo dropout passes (entropy: MC predictive entropy)",
    )
    m.add_argument(
        "--ensemble",
        choices=("mean", "weighted", "vote"),
        default="mean",
        help="how several --model predictions combine (default: %(default)s)",
    )
    m.add_argument("--weights", help="comma-separated weights for --ensemble weighted")
    e = p.add_argument_group("evaluation settings (EvalConfig)")
    e.add_argument(
        "--threshold",
        type=float,
        help="fixed entropy threshold in [0, 1] instead of choosing on validation",
    )
    e.add_argument("--min-coverage", type=float, default=0.8, help="default: %(default)s")
    e.add_argument("--ece-bins", type=int, default=10, help="default: %(default)s")
    e.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples (default: %(default)s)"
    )
    e.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    e.add_argument(
        "--calibration",
        default="temperature",
        help="comma-separated: temperature, platt, isotonic (default: %(default)s)",
    )
    e.add_argument(
        "--target-sensitivity",
        type=float,
        default=0.9,
        help="validation sensitivity of the reported operating point (default: %(default)s)",
    )
    g = p.add_argument_group("explanations")
    g.add_argument(
        "--gradcam",
        type=int,
        default=0,
        metavar="N",
        help="Grad-CAM overlays of the N worst mistakes",
    )
    g.add_argument(
        "--gradcam-layer", help="conv layer name (default: the registry's last_conv_layer)"
    )
    g.add_argument("--gradcam-ids", help="comma-separated test image ids to explain as well")
    g.add_argument("--gradcam-plus", action="store_true", help="Grad-CAM++ instead of Grad-CAM")
    return p


def _load_model(path: Path):
    """(model, run config or None) from a run folder or a .keras file."""
    from tfmelanoma.config import load_config
    from tfmelanoma.models.loading import load_model, resolve_model_path

    file, run_dir = resolve_model_path(fsio.expand(path))
    config = None
    if run_dir is not None and (run_dir / "config.yaml").is_file():
        config = load_config(str(run_dir / "config.yaml"))
    return load_model(file), config


def _input_size(args, path, model, config) -> int:
    """A member's input size: --image-size, else its run's data.image_size, else its input."""
    size = args.image_size or (config.data.image_size if config else None) or model.input_shape[1]
    if not size:
        raise ValueError(f"{path}: the model accepts any input size; pass --image-size")
    fixed = model.input_shape[1:3]
    if args.image_size and None not in fixed and tuple(fixed) != (size, size):
        raise ValueError(
            f"--image-size {size}: {path} takes {fixed[0]}x{fixed[1]} input only (the input "
            f"shape saved in its model file); leave --image-size out to feed it at its own size"
        )
    return int(size)


def _split_key(config) -> dict:
    """What decides a run's held-out validation and test parts (`training.data.load_splits`)."""
    d = config.data
    return {
        "data.train": list(d.train),
        "data.test": d.test,  # the merge drops training images that duplicate test images
        "data.val_fraction": d.val_fraction,
        "data.test_fraction": d.test_fraction,
        "data.exclude": sorted(d.exclude),
        "split seed (data.split_seed, else run.seed)": config.split_seed,
    }


def _check_same_splits(args, configs) -> None:
    """An ensemble's members must share the splits its validation and test data come from.

    Validation (and a held-out test part) is drawn from the first run's training data with its
    seed; a member trained with another split would have trained on some of those images, so
    temperature, rejection threshold and (for held-out tests) the metrics would be fitted or
    measured on its training data, silently. Folders given with --images-dir and
    --val-images-dir (or --no-val) do not depend on the runs' splits.
    """
    if len(configs) < 2 or (args.images_dir and (args.val_images_dir or args.no_val)):
        return
    if any(c is None for c in configs):
        log.warning(
            "an ensemble member is a .keras file without its run config: it cannot be checked "
            "that the members share their validation and test splits"
        )
        return
    first = _split_key(configs[0])
    for path, config in zip(args.model[1:], configs[1:], strict=True):
        theirs = _split_key(config)
        diff = [f"{k} {theirs[k]!r} (not {first[k]!r})" for k in first if theirs[k] != first[k]]
        if diff:
            raise ValueError(
                f"{path} was trained on other splits than {args.model[0]}: {'; '.join(diff)}. "
                "The first run's validation and held-out test images may be its training "
                "images. Train ensemble members with the same data and --set data.split_seed=N "
                "(seeds may differ), or evaluate on folders (--images-dir with --val-images-dir "
                "or --no-val)"
            )


def _num_outputs(model) -> int:
    shape = model.output_shape
    if isinstance(shape, dict):
        shape = shape.get("diagnosis", next(iter(shape.values())))
    return int(shape[-1])


def _class_names(args, k: int, config) -> tuple[list[str], str]:
    from tfmelanoma import labels

    label = args.label or (config.data.label if config else None)
    if args.class_names:
        names = [c.strip() for c in args.class_names.split(",") if c.strip()]
    elif label == "harmonised_diagnosis" or (label is None and k == len(labels.HARMONISED_CLASSES)):
        names, label = list(labels.HARMONISED_CLASSES), "harmonised_diagnosis"
    else:
        names = list(labels.BINARY_CLASSES)
    k_eff = 2 if k == 1 else k
    if len(names) != k_eff:
        raise ValueError(
            f"the model outputs {k} probabilities but the classes are {names} "
            f"({len(names)}); pass --class-names or a matching --label"
        )
    return names, label or "label"


def _tf_data() -> bool:
    """Whether datasets are read with tf.data (TensorFlow backend) or `tfds.data_source`."""
    import keras

    return keras.backend.backend() == "tensorflow"


def _reader(view):
    """(examples of a `SplitView` for `data.predict_dataset`, size), per Keras backend."""
    return (view.as_tf_dataset() if _tf_data() else view.as_data_source()), len(view)


def _dataset(name: str, split: str, args, config):
    """A prepared dataset split, via `tfmelanoma.datasets.load_split`."""
    from tfmelanoma import datasets
    from tfmelanoma.datasets.access import builder_name

    data_dir = args.data_dir or (config.data.data_dir if config else None) or None
    builder = datasets.get_builder(
        name,
        data_dir,
        manual_dir=args.manual_dir,
        file_format="tfrecord" if _tf_data() else "array_record",
    )
    kw = {"seed": config.split_seed, "test_fraction": config.data.test_fraction} if config else {}
    if split == "validation" and "validation" not in builder.info.splits:
        # No official validation split: use the merge step's patient-grouped validation split
        # of this dataset, with the test set (--test, else the same dataset) held out first.
        test = builder_name(args.test or name)
        comb = datasets.load_combination(builder_name(name), test, data_dir=data_dir, **kw)
        view = comb.validation
    else:
        view = datasets.load_split(builder_name(name), split, data_dir=data_dir, **kw)
    if len(view) == 0:
        raise ValueError(f"dataset {name!r} split {split!r} is empty: nothing to evaluate")
    return _reader(view)


def _sources(args, names, label_key, config):
    """(test dataset, size, validation dataset or None, size) as the arguments ask."""
    from tfmelanoma.evaluation import data

    class_map = data.parse_class_map(args.class_map)
    run_splits = None
    if (not args.test and not args.images_dir) or (
        config and not (args.val or args.val_images_dir or args.no_val)
    ):
        if config is None:
            raise ValueError(
                "give --test DATASET or --images-dir DIR (a .keras file has no run config)"
            )
        from tfmelanoma.training.data import load_splits

        if args.data_dir or args.manual_dir:
            import dataclasses

            config = dataclasses.replace(
                config,
                data=dataclasses.replace(
                    config.data,
                    data_dir=args.data_dir or config.data.data_dir,
                    manual_dir=args.manual_dir or config.data.manual_dir,
                ),
            )
        run_splits = load_splits(config, file_format="tfrecord" if _tf_data() else "array_record")
    run_sets = run_splits.test_sets if run_splits is not None else {}
    if args.images_dir:
        test = data.images_dir_dataset(args.images_dir, names, class_map, label_key)
    elif args.test and args.test in run_sets:  # one of the run's test sets, as the run saw it
        test = _reader(run_sets[args.test])
    elif args.test:
        test = _dataset(args.test, args.split, args, config)
    elif len(run_sets) > 1:
        raise ValueError(
            f"the run has {len(run_sets)} test sets ({', '.join(run_sets)}); evaluate one at a "
            "time with --test NAME (the run's own reports are in <run>/evaluation/<name>/)"
        )
    else:
        test = _reader(run_splits.test)
    val = (None, 0)
    if args.no_val:
        pass
    elif args.val_images_dir:
        val = data.images_dir_dataset(args.val_images_dir, names, class_map, label_key)
    elif args.val:
        name, _, split = args.val.partition(":")
        val = _dataset(name, split or "validation", args, config)
    elif run_splits is not None:
        val = _reader(run_splits.validation)
    return (*test, *val)


def _predictor(model, args):
    """Plain, TTA or MC-dropout prediction for one model, as the arguments ask."""
    from tfmelanoma.evaluation import ensemble, tta
    from tfmelanoma.evaluation.inference import as_predictor

    if args.tta:
        cfg = tta.TTAConfig(zoom=args.tta_zoom, beta=args.tta_beta)
        return tta.tta_predictor(model, cfg, args.batch_size)
    if args.mc_dropout:
        return lambda images: ensemble.mc_dropout_predict(
            model, images, args.mc_dropout, seed=None, batch_size=args.batch_size
        )["mean_probs"]
    return as_predictor(model, args.batch_size)


def run(args) -> dict:
    """Evaluates as `args` say and returns the metrics dict (see `build_parser`)."""

    from tfmelanoma.evaluation import EvalConfig, data, ensemble, evaluate_predictions

    config = EvalConfig(
        ece_bins=args.ece_bins,
        min_coverage=args.min_coverage,
        entropy_threshold=args.threshold,
        bootstrap_n=args.bootstrap,
        bootstrap_seed=args.seed,
        calibration_methods=tuple(c.strip() for c in args.calibration.split(",") if c.strip()),
    )  # validated first: a bad threshold fails before any model is loaded
    out = fsio.expand(args.out)
    fsio.check_output_folder(out, args.overwrite)
    loaded = [_load_model(Path(m)) for m in args.model]
    models, run_config = [m for m, _ in loaded], loaded[0][1]
    widths = {max(2, _num_outputs(m)) for m in models}  # one sigmoid unit = two classes
    if len(widths) != 1:
        raise ValueError(f"the ensemble's models output different class counts {sorted(widths)}")
    names, label_key = _class_names(args, widths.pop(), run_config)
    sizes = [
        _input_size(args, path, model, cfg)
        for path, (model, cfg) in zip(args.model, loaded, strict=True)
    ]
    _check_same_splits(args, [cfg for _, cfg in loaded])
    if args.mc_dropout and args.tta:
        raise ValueError("--mc-dropout and --tta together are not supported; choose one")
    if (args.gradcam or args.gradcam_ids) and not _tf_data():
        import keras

        raise ValueError(
            f"--gradcam/--gradcam-ids need the TensorFlow backend (tf.GradientTape); this run "
            f"uses {keras.backend.backend()}: run again with KERAS_BACKEND=tensorflow"
        )
    members = [(_predictor(m, args), size) for m, size in zip(models, sizes, strict=True)]
    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    if args.ensemble == "weighted" and len(weights or ()) != len(models):
        raise ValueError(
            f"--ensemble weighted needs --weights with {len(models)} numbers, got {args.weights!r}"
        )

    def predict(ds, what: str, total: int, limit=None):
        """Each member over `ds` at its own input size, combined (`ensemble.combine_probs`)."""
        passes = []
        for k, (predictor, size) in enumerate(members):
            label = what if len(members) == 1 else f"{what}, model {k + 1}/{len(members)}"
            passes.append(
                data.predict_dataset(
                    predictor,
                    ds,
                    image_size=size,
                    batch_size=args.batch_size,
                    label_key=label_key,
                    limit=limit,
                    what=label,
                    total=total,
                )
            )
        (y, probs, ids), rest = passes[0], passes[1:]
        for k, (y_k, _, ids_k) in enumerate(rest, start=2):
            if ids_k != ids or not (y_k == y).all():  # the same source read twice: a bug if not
                raise RuntimeError(f"model {k} saw the {what} in another order than model 1")
        if rest:
            probs = ensemble.combine_probs([p for _, p, _ in passes], args.ensemble, weights)
        return y, probs, ids

    test_ds, n_test, val_ds, n_val = _sources(args, names, label_key, run_config)
    y, probs, ids = predict(test_ds, "test split", n_test, limit=args.limit)
    y_val = p_val = None
    if val_ds is not None:
        y_val, p_val, _ = predict(val_ds, "validation split", n_val)
    chosen = [i.strip() for i in (args.gradcam_ids or "").split(",") if i.strip()]
    unknown = sorted(set(chosen) - set(ids))
    if unknown:  # checked before anything is written
        raise ValueError(
            f"--gradcam-ids: no test image with id {unknown[0]!r} (ids look like {ids[0]!r})"
        )
    with fsio.folder_lock(out, "report folder"):  # one writer; checked again under the lock
        fsio.check_output_folder(out, args.overwrite)
        result = evaluate_predictions(
            y, probs, ids, names, out, y_val, p_val, config, args.target_sensitivity
        )
        if args.gradcam or chosen:
            # an ensemble is explained through its first model
            explain = (models[0], run_config, test_ds, sizes[0], label_key, names)
            _gradcam(args, explain, y, probs, ids, chosen, out)
    return result


def _gradcam(args, explain, y, probs, ids, chosen, out) -> None:
    """Grad-CAM overlays of the worst mistakes and of `--gradcam-ids` into `<out>/gradcam`."""
    import numpy as np

    from tfmelanoma.evaluation import data, gradcam
    from tfmelanoma.evaluation.probs import as_prob_matrix

    model, run_config, test_ds, size, label_key, names = explain
    layer = gradcam.resolve_layer_name(
        model, args.gradcam_layer, run_config.model.name if run_config else None
    )
    worst = list(gradcam.worst_cases(y, as_prob_matrix(probs), args.gradcam))
    worst += [k for k in map(ids.index, chosen) if k not in worst]
    wanted = [ids[i] for i in worst]
    images = data.gather_images(test_ds, wanted, size, label_key)
    if len(wanted):
        res = gradcam.grad_cam(model, images, layer, plus=args.gradcam_plus)
        gradcam.save_overlays(images, res, out / "gradcam", wanted, names, np.asarray(y)[worst])
    print(f"Grad-CAM ({layer}): {len(wanted)} overlays in {out / 'gradcam'}")


def main(argv: list[str] | None = None) -> int:
    """Console entry point (`tfmelanoma-evaluate`)."""
    args = build_parser().parse_args(argv)  # --help answers before TensorFlow is imported
    quiet_tensorflow()
    setup_logging(args.verbose)
    return run_command(
        PROG,
        lambda: _print_result(args, run(args)),
        on_interrupt=f"the report in {args.out} may be incomplete; run again with --overwrite",
    )


def _print_result(args, result: dict) -> int:
    """The headline numbers and where the report is."""
    s = result["summary"]

    def num(key: str) -> str:
        value = s.get(key)
        return "n/a" if value is None else f"{value:.3f}"

    thr = "none" if s["threshold"] is None else f"{s['threshold']:.2f}"
    print(
        f"accuracy {num('accuracy')}, AUC {num('auc_roc')}, ECE {num('ece_top_label')}; "
        f"threshold {thr}, coverage {s['coverage']:.1%}, "
        f"accuracy after rejection {num('accuracy_after_rejection')}"
    )
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
