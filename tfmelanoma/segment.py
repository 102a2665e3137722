"""Lesion segmentation CLI: `python -m tfmelanoma.segment train|evaluate|predict`.

    train     fit a registry model (AER-Net and its ablation baselines) on image/mask pairs;
              writes model.keras, history.csv/.png, config.json (+ validation scores)
    evaluate  per-image CSV, mean Jaccard / Dice, ISIC 2018 thresholded Jaccard, PNG grid
    predict   masks (and optional lesion crops) for a folder of images

Runs on every Keras backend: on JAX (or for ArrayRecord TFDS data) the input comes from the
TF-free NumPy pipeline (`models.segmentation.numpy_data`), on TensorFlow from tf.data.
See docs/segmentation.md for examples. The pieces live in `tfmelanoma.models.segmentation`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tfmelanoma import fsio
from tfmelanoma.cli import USER_ERRORS, HelpFormatter, OneLineErrorParser, fail, interrupted
from tfmelanoma.errors import RunFolderError, ToolMissingError
from tfmelanoma.logging_utils import get_logger, quiet_tensorflow, setup_logging

PROG = "python -m tfmelanoma.segment"
log = get_logger(__name__)

ABLATION = ("unet", "attention_unet", "attention_residual_unet", "aernet")
# AER-Net's training recipe (section 3.3) and a seconds-long smoke run.
PRESETS = {
    "paper": {
        "image_size": 256,
        "batch_size": 16,
        "epochs": 100,
        "lr": 1e-3,
        "loss": "dice",
        "colour_space": "lab",
    },
    "smoke": {
        "image_size": 64,
        "batch_size": 4,
        "epochs": 1,
        "steps_per_epoch": 2,
        "limit": 16,
        "val_limit": 8,
        "base_filters": 8,
        "depth": 3,
        "bn_momentum": 0.9,
    },
}
DEFAULTS = {
    "image_size": 256,
    "batch_size": 16,
    "epochs": 100,
    "lr": 1e-3,
    "loss": "dice",
    "colour_space": "lab",
    "steps_per_epoch": None,
    "limit": None,
    "val_limit": None,
    "base_filters": None,
    "depth": None,
    "bn_momentum": None,
}


def _data_args(p: argparse.ArgumentParser, split: str) -> None:
    p.add_argument(
        "--data",
        default="isic2017",
        help="isic2017 | isic2018 | ph2 (official layout under --data-dir), "
        "folder (--images/--masks) or tfds:NAME/CONFIG (prepared TFDS builder)",
    )
    p.add_argument(
        "--data-dir", type=fsio.expand, help="folder holding the official dataset folders"
    )
    p.add_argument("--images", type=fsio.expand, help="--data folder: image folder")
    p.add_argument(
        "--masks",
        type=fsio.expand,
        help="--data folder: mask folder ({id}_segmentation.png or {id}.png)",
    )
    p.add_argument(
        "--tfds-data-dir",
        type=lambda text: str(fsio.expand(text)),
        help="TFDS data dir for --data tfds:...",
    )
    p.add_argument("--split", default=split, help="split to read")
    p.add_argument(
        "--pipeline",
        choices=["auto", "tf.data", "numpy"],
        default="auto",
        help="input pipeline: auto = NumPy (TF-free) on a non-TensorFlow Keras backend or for "
        "ArrayRecord TFDS data, else tf.data",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="NumPy pipeline: PyDataset worker threads"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description=__doc__.split("\n")[0],
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a segmentation model", formatter_class=HelpFormatter)
    _data_args(t, "train")
    t.add_argument(
        "--model",
        default="aernet",
        help="registry name (tfmelanoma.models.list_models('segmentation'))",
    )
    t.add_argument(
        "--preset",
        choices=[*PRESETS, "ablation"],
        action="append",
        default=[],
        help="paper: AER-Net recipe; smoke: tiny run; ablation: train U-Net, +attention, "
        "+residual, AER-Net in turn (combine: --preset ablation --preset smoke)",
    )
    t.add_argument(
        "--encoder", help="aernet encoder: efficientnetb0..b4, efficientnet_lite0, sm:<backbone>"
    )
    t.add_argument("--weights", default=None, help="encoder weights: none (default) or imagenet")
    t.add_argument("--colour-space", choices=["rgb", "lab", "hsv"])
    t.add_argument("--base-filters", type=int, help="plain U-Net first-level channels")
    t.add_argument("--depth", type=int, help="plain U-Net poolings")
    t.add_argument(
        "--bn-momentum",
        type=float,
        help="decoder/U-Net BatchNorm momentum (0.99; ~0.9 for short runs)",
    )
    t.add_argument("--image-size", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--epochs", type=int)
    t.add_argument("--steps-per-epoch", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--loss", choices=["dice", "dice_bce", "bce"])
    t.add_argument("--no-augment", action="store_true", help="disable joint flips/rot90/crops")
    t.add_argument("--limit", type=int, help="use only the first N training pairs")
    t.add_argument("--val-split", default="validation", help="validation split ('' to skip)")
    t.add_argument("--val-limit", type=int)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", type=fsio.expand, required=True, help="run folder")
    t.add_argument("--overwrite", action="store_true", help="replace an existing model.keras")

    e = sub.add_parser(
        "evaluate", help="score a trained model on a split", formatter_class=HelpFormatter
    )
    _data_args(e, "validation")
    e.add_argument("--model", type=fsio.expand, required=True, help=".keras file")
    e.add_argument("--limit", type=int)
    e.add_argument("--threshold", type=float, default=0.5)
    e.add_argument("--out", type=fsio.expand, required=True, help="report folder (new or empty)")
    e.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")

    p = sub.add_parser(
        "predict", help="write masks for a folder of images", formatter_class=HelpFormatter
    )
    p.add_argument("--model", type=fsio.expand, required=True, help=".keras file")
    p.add_argument("--images", type=fsio.expand, required=True)
    p.add_argument("--out", type=fsio.expand, required=True, help="mask folder")
    p.add_argument(
        "--crop-dir", type=fsio.expand, help="also write lesion crops here (for the classifier)"
    )
    p.add_argument("--margin", type=float, default=0.1, help="crop margin (fraction of box side)")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty --out / --crop-dir"
    )
    return parser


def use_numpy_pipeline(args) -> bool:
    """True when the TF-free NumPy pipeline must (or was asked to) feed the model.

    `--pipeline auto` picks it on any non-TensorFlow Keras backend (JAX, PyTorch: no tf.data
    there) and for TFDS datasets prepared as ArrayRecord (which tf.data cannot read).
    """
    import keras  # noqa: PLC0415

    choice = getattr(args, "pipeline", "auto")
    if choice != "auto":
        return choice == "numpy"
    if keras.backend.backend() != "tensorflow":
        return True
    if args.data.startswith("tfds:"):
        from tfmelanoma.models.segmentation import numpy_data  # noqa: PLC0415

        return numpy_data.tfds_file_format(args.data[5:], args.tfds_data_dir) == "array_record"
    return False


def _check_data_args(args) -> None:
    """Raises ValueError when the data arguments name no readable source (before any writing)."""
    if args.data == "folder":
        if not (args.images and args.masks):
            raise ValueError("--data folder needs --images and --masks")
    elif not args.data.startswith("tfds:") and args.data_dir is None:
        raise ValueError(
            f"--data {args.data} needs --data-dir (the folder with the official folders)"
        )


def _pairs(args, split: str, limit):
    from tfmelanoma.models.segmentation import files  # noqa: PLC0415

    _check_data_args(args)
    if args.data == "folder":
        return files.folder_pairs(args.images, args.masks, limit=limit)
    return files.find_pairs(args.data, args.data_dir, split, limit=limit)


def load_data(args, split: str, image_size: int, batch_size: int, limit=None, **kw):
    """(dataset, image_ids) for the CLI's data arguments.

    The dataset is a tf.data pipeline, or on the NumPy path a `keras.utils.PyDataset`; ids are
    None on the NumPy path (the PyDataset serves its own through `image_ids()`).
    """
    steps_per_epoch = kw.pop("steps_per_epoch", None)  # the NumPy pipeline wraps around itself
    if use_numpy_pipeline(args):
        from tfmelanoma.models.segmentation import numpy_data  # noqa: PLC0415  (no TensorFlow)

        if args.data.startswith("tfds:"):
            source = numpy_data.tfds_source(args.data[5:], split, args.tfds_data_dir, limit)
        else:
            source = numpy_data.FileSource(_pairs(args, split, limit))
        log.info("%s/%s: %d examples (NumPy pipeline)", args.data, split, len(source))
        batches = numpy_data.SegmentationBatches(
            source,
            image_size=image_size,
            batch_size=batch_size,
            augment=kw.get("augment", False),
            shuffle=kw.get("shuffle", False),
            seed=kw.get("seed", 0),
            steps_per_epoch=steps_per_epoch or 0,
            workers=getattr(args, "workers", 1),
        )
        return batches, None

    try:
        from tfmelanoma.models.segmentation import data  # noqa: PLC0415  (imports TensorFlow)
    except ImportError as e:
        raise ToolMissingError(
            f"--pipeline tf.data needs TensorFlow ({e}); use --pipeline numpy (auto does)"
        ) from None

    if args.data.startswith("tfds:"):
        ds = data.tfds_dataset(
            args.data[5:],
            split,
            image_size,
            batch_size,
            data_dir=args.tfds_data_dir,
            limit=limit,
            **kw,
        )
        return ds, data.tfds_image_ids(args.data[5:], split, args.tfds_data_dir, limit)
    pairs = _pairs(args, split, limit)
    log.info("%s/%s: %d image/mask pairs", args.data, split, len(pairs))
    return data.make_dataset(pairs, image_size, batch_size, **kw), pairs.image_ids


def _resolve(args) -> dict:
    cfg = dict(DEFAULTS)
    for preset in args.preset:
        cfg.update(PRESETS.get(preset, {}))
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
    return cfg


def _model_kwargs(name: str, cfg: dict, args) -> dict:
    kw = {
        "input_shape": (cfg["image_size"], cfg["image_size"], 3),
        "colour_space": cfg["colour_space"],
    }
    if name in ("unet", "attention_unet", "attention_residual_unet"):
        kw.update({k: cfg[k] for k in ("base_filters", "depth") if cfg[k] is not None})
    if name in ABLATION and cfg["bn_momentum"] is not None:
        kw["bn_momentum"] = cfg["bn_momentum"]
    if name == "aernet" and args.encoder:
        kw["encoder"] = args.encoder
    if args.weights and args.weights.lower() != "none" and name not in ABLATION[:3]:
        kw["weights"] = args.weights
    return kw


def _check_backend(name: str, kwargs: dict) -> None:
    import keras  # noqa: PLC0415

    backend = keras.backend.backend()
    uses_sm = name.startswith("sm_") or str(kwargs.get("encoder", "")).startswith("sm:")
    if uses_sm and backend != "tensorflow":
        raise ValueError(
            f"{name}{' encoder ' + kwargs['encoder'] if 'encoder' in kwargs else ''}: "
            f"segmentation_models (sm_unet, sm_fpn, sm:<backbone>) needs KERAS_BACKEND=tensorflow; "
            f"the backend is {backend!r}"
        )


def train_one(name: str, cfg: dict, args, out: Path) -> dict:
    """Trains one registry model into `out`; returns its summary (validation scores if any)."""
    import keras  # noqa: PLC0415

    from tfmelanoma.models import create_model  # noqa: PLC0415
    from tfmelanoma.models.segmentation import losses, metrics, report  # noqa: PLC0415
    from tfmelanoma.training.progress import HistoryCSV  # noqa: PLC0415

    model_path = out / "model.keras"
    _check_model_path(model_path, args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    size, batch = cfg["image_size"], cfg["batch_size"]
    train_ds, _ = load_data(
        args,
        args.split,
        size,
        batch,
        cfg["limit"],
        augment=not args.no_augment,
        shuffle=True,
        repeat=cfg["steps_per_epoch"] is not None,
        seed=args.seed,
        steps_per_epoch=cfg["steps_per_epoch"],
    )
    kwargs = _model_kwargs(name, cfg, args)
    model = create_model(name, **kwargs)
    model.compile(
        optimizer=keras.optimizers.Adam(cfg["lr"]),
        loss=losses.get_loss(cfg["loss"]),
        metrics=metrics.keras_metrics(),
    )
    val = None
    if args.val_split:
        val, val_ids = load_data(args, args.val_split, size, batch, cfg["val_limit"])
    config = {
        "model": name,
        "model_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "params": model.count_params(),
        **cfg,
        "data": args.data,
        "split": args.split,
        "val_split": args.val_split,
        "augment": not args.no_augment,
        "seed": args.seed,
        "backend": keras.backend.backend(),
        "pipeline": type(train_ds).__name__,
        "argv": sys.argv,
    }
    fsio.atomic_write_text(out / "config.json", json.dumps(config, indent=2, default=str) + "\n")
    start = time.perf_counter()
    model.fit(
        train_ds,
        epochs=cfg["epochs"],
        steps_per_epoch=cfg["steps_per_epoch"],
        validation_data=val,
        shuffle=False,  # the dataset shuffles itself
        callbacks=[
            HistoryCSV(str(out / "history.csv")),
            # NumPy pipeline: each epoch's order and augmentations by the epoch's own number
            *([train_ds.epoch_callback()] if hasattr(train_ds, "epoch_callback") else []),
        ],
        verbose=2 if args.verbose >= 0 else 0,
    )
    seconds = time.perf_counter() - start
    fsio.atomic_save_model(model, model_path)  # a crash never leaves half a model there
    from tfmelanoma.evaluation.plots import training_curves  # noqa: PLC0415  (matplotlib)

    training_curves(out / "history.csv", out / "history.png")  # after the save: nothing to lose
    summary = {"model": name, "params": model.count_params(), "train_seconds": round(seconds, 1)}
    if val is not None:
        summary.update(report.evaluate_model(model, val, val_ids, out / "validation"))
    fsio.atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("%s: %s", name, summary)
    return summary


def _check_model_path(model_path: Path, overwrite: bool) -> None:
    if model_path.exists() and not overwrite:
        raise RunFolderError(f"{model_path} exists; pass --overwrite or choose another --out")


def cmd_train(args) -> int:
    cfg = _resolve(args)
    ablation = "ablation" in args.preset
    names = ABLATION if ablation else (args.model,)
    # Before any training or writing: an ablation must not fail at its last model.
    for name in names:
        _check_backend(name, _model_kwargs(name, cfg, args))
        _check_model_path(
            (args.out / name if ablation else args.out) / "model.keras", args.overwrite
        )
    _check_data_args(args)
    # One writer per run folder: a second `segment train --out` into it is refused.
    with fsio.folder_lock(args.out, "segmentation run folder"):
        if ablation:
            rows = [train_one(name, cfg, args, args.out / name) for name in ABLATION]
            from tfmelanoma.models.segmentation import report  # noqa: PLC0415

            report.write_ablation(rows, args.out)
        else:
            train_one(args.model, cfg, args, args.out)
    return 0


def cmd_evaluate(args) -> int:
    from tfmelanoma.models.loading import load_model  # noqa: PLC0415
    from tfmelanoma.models.segmentation import report  # noqa: PLC0415

    fsio.check_output_folder(args.out, args.overwrite)  # before anything is loaded
    model = load_model(fsio.expand(args.model))
    height = model.input_shape[1]
    ds, ids = load_data(args, args.split, height, 8, args.limit)
    with fsio.folder_lock(args.out, "report folder"):
        fsio.check_output_folder(args.out, args.overwrite)
        summary = report.evaluate_model(model, ds, ids, args.out, args.threshold)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_predict(args) -> int:
    from tfmelanoma.models.loading import load_model  # noqa: PLC0415
    from tfmelanoma.models.segmentation import inference  # noqa: PLC0415

    for folder in (args.out, args.crop_dir):
        if folder is not None:
            fsio.check_output_folder(folder, args.overwrite, "mask folder")
    model = load_model(fsio.expand(args.model))
    with fsio.folder_lock(args.out, "mask folder"):
        rows = inference.predict_folder(
            model, args.images, args.out, args.crop_dir, args.threshold, args.margin
        )
    print(
        f"wrote {len(rows)} masks to {args.out}"
        + (f" and crops to {args.crop_dir}" if args.crop_dir else "")
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `tfmelanoma-segment` / `python -m tfmelanoma.segment`."""
    args = build_parser().parse_args(argv)  # --help answers before TensorFlow is imported
    quiet_tensorflow()
    setup_logging(args.verbose)
    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict}
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        # Models are written atomically: an interrupted command leaves the old files whole.
        return interrupted(PROG, "nothing half-written was left behind")
    except USER_ERRORS as err:
        return fail(PROG, err)


if __name__ == "__main__":
    sys.exit(main())
