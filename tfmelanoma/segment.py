"""Lesion segmentation CLI: `python -m tfmelanoma.segment train|evaluate|predict`.

    train     fit a registry model (AER-Net and its ablation baselines) with the training engine
              (`tfmelanoma.training.runner`, task segmentation): resumable checkpoints, best.keras
              by validation Dice, history.csv/.png, evaluation/ at the end
    evaluate  per-image CSV, mean Jaccard / Dice, ISIC 2018 thresholded Jaccard, PNG grid
    predict   masks (and optional lesion crops) for a folder of images

Data: the segmentation configs of the isic2016/isic2017/isic2018/ph2 builders (prepared from the
manual download, `--data-dir`), or a folder of images with a folder of masks. Runs on every Keras
backend: on JAX (or for ArrayRecord data) the input comes from the TF-free NumPy pipeline
(`tfmelanoma.data.segmentation_numpy`), on TensorFlow from tf.data (`tfmelanoma.data.segmentation`).
See docs/segmentation.md for examples.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from tfmelanoma import config as config_lib
from tfmelanoma import fsio
from tfmelanoma.cli import (
    HelpFormatter,
    OneLineErrorParser,
    raise_if_interrupted,
    run_command,
)
from tfmelanoma.errors import RunFolderError, ToolMissingError
from tfmelanoma.logging_utils import get_logger, quiet_tensorflow, setup_logging

PROG = "python -m tfmelanoma.segment"
log = get_logger(__name__)

ABLATION = ("unet", "attention_unet", "attention_residual_unet", "aernet")
PRESETS = {"paper": "segmentation_paper", "smoke": "segmentation_smoke"}
"""`--preset` names -> the YAML presets in `tfmelanoma/configs/` (`ablation` is a loop)."""


def _data_args(p: argparse.ArgumentParser, split: str | None) -> None:
    p.add_argument(
        "--data",
        default=None if split is None else "isic2017",
        help="isic2017 | isic2018 | ph2 | isic2016 (the builder's segmentation config, prepared "
        "from --data-dir on first use; NAME/CONFIG or tfds:NAME/CONFIG names another config) or "
        "folder (--images/--masks)" + (" (default: the preset's)" if split is None else ""),
    )
    p.add_argument(
        "--data-dir",
        type=fsio.expand,
        help="the folder with the dataset's manual download (official zips or folders)",
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
        help="TFDS data dir the builder is prepared in (default: TFDS's)",
    )
    p.add_argument("--split", default=split or "train", help="split to read")
    p.add_argument(
        "--pipeline",
        choices=["auto", "tf.data", "numpy"],
        default=None if split is None else "auto",
        help="input pipeline: auto = NumPy (TF-free) on a non-TensorFlow Keras backend or for "
        "ArrayRecord TFDS data, else tf.data",
    )
    p.add_argument(
        "--workers", type=int, default=None if split is None else 1,
        help="NumPy pipeline: PyDataset worker threads",
    )  # fmt: skip


def _train_parser(sub) -> None:
    t = sub.add_parser(
        "train",
        help="train a segmentation model (the training engine: resumable, best by val Dice)",
        formatter_class=HelpFormatter,
        description="Flags are shorthands for config keys (python -m tfmelanoma.train --help "
        "lists them); --config/--set give any key. The run folder gets config.yaml, "
        "checkpoints/ (--resume), best.keras (best validation Dice), model.keras (the same "
        "model, for evaluate/predict), history.csv/.png, evaluation/, metrics.json, summary.json.",
    )
    _data_args(t, None)
    t.add_argument("--config", help="preset or YAML file (default: segmentation_paper)")
    t.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config key (repeatable)",
    )  # fmt: skip
    t.add_argument("--model", help="registry name (tfmelanoma.models.list_models('segmentation'))")
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
    t.add_argument(
        "--val-split",
        help="validation split ('' or a split the source lacks: a held-out data.val_fraction of "
        "the training split)",
    )
    t.add_argument("--val-limit", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--out", type=fsio.expand, required=True, help="run folder")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--overwrite", action="store_true", help="start again in a folder with a run")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description=__doc__.split("\n")[0],
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)

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


# Flag -> config key (flags left out keep the preset's value).
FLAG_KEYS = {
    "data_dir": "data.manual_dir", "tfds_data_dir": "data.data_dir", "images": "data.images_dir",
    "masks": "data.masks_dir", "workers": "data.workers", "image_size": "data.image_size",
    "limit": "data.limit", "val_split": "data.val_split", "val_limit": "data.val_limit",
    "model": "model.name", "weights": "model.weights", "loss": "model.loss",
    "batch_size": "run.batch_size", "epochs": "run.epochs", "steps_per_epoch": "run.steps_per_epoch",
    "seed": "run.seed", "lr": "optimizer.learning_rate",
}  # fmt: skip
OPTION_FLAGS = {
    "encoder": "encoder", "colour_space": "colour_space", "base_filters": "base_filters",
    "depth": "depth", "bn_momentum": "bn_momentum",
}  # fmt: skip


def _flag_overrides(args) -> tuple[list[str], dict]:
    """`--set`-style overrides and model options for the flags the user gave."""
    out = []
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            out.append(
                f"{key}={'' if value == '' else json.dumps(str(value) if isinstance(value, Path) else value)}"
            )
    if args.data is not None:
        out.append(f"data.train={args.data.removeprefix('tfds:')}")
    if args.pipeline is not None:
        out.append(f"data.pipeline={'tf' if args.pipeline == 'tf.data' else args.pipeline}")
    if args.no_augment:
        out.append("augment.enabled=false")
    if args.split != "train":
        raise ValueError(f"--split {args.split}: segment train reads the source's train split")
    options = {o: getattr(args, f) for f, o in OPTION_FLAGS.items() if getattr(args, f) is not None}
    return out, options


def train_config(args, name: str | None = None) -> config_lib.Config:
    """The config of one `segment train` run: preset, then flags, then --set; model options
    the model does not take (a preset's U-Net sizes for aernet) are left out."""
    base = args.config or next(
        (PRESETS[p] for p in reversed(args.preset) if p in PRESETS), "segmentation_paper"
    )
    flags, options = _flag_overrides(args)
    overrides = [*flags, *(["run.task=segmentation"]), *args.overrides]
    if name is not None:
        overrides.append(f"model.name={name}")
    cfg = config_lib.load_config(base, overrides)
    from tfmelanoma.training.segmentation_task import OPTIONS  # noqa: PLC0415  (imports Keras)

    merged = {**cfg.model.options, **options}
    allowed = OPTIONS.get(cfg.model.name)
    if allowed is not None:
        merged = {k: v for k, v in merged.items() if k in allowed}
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, options=merged))


def _check_prepared(cfg: config_lib.Config) -> None:
    """A builder that is not prepared needs --data-dir: say so before anything is written."""
    source = cfg.data.train[0]
    if source == "folder" or cfg.data.manual_dir:
        return
    import tensorflow_datasets as tfds  # noqa: PLC0415

    from tfmelanoma.data.segmentation_sources import builder_name  # noqa: PLC0415

    full = builder_name(source)
    try:
        __import__(f"tfds_builders.{full.split('/')[0]}")
        prepared = tfds.builder(full, data_dir=cfg.data.data_dir or None).is_prepared()
    except Exception:  # unknown names: the engine's check names them
        return
    if not prepared:
        raise ValueError(
            f"--data {source} needs --data-dir (the folder with its official download): "
            f"{full} is not prepared in {cfg.data.data_dir or 'the default TFDS data dir'}"
        )


def _check_out(out: Path, args) -> None:
    if (out / "model.keras").exists() and not (args.overwrite or args.resume):
        raise RunFolderError(
            f"{out / 'model.keras'} exists; pass --overwrite (or --resume) or choose another --out"
        )


def train_one(cfg: config_lib.Config, out: Path, args) -> dict:
    """Trains one config into `out` with the engine; `model.keras` = best.keras; returns the
    summary row (model, params, train seconds, the evaluation's scores)."""
    from tfmelanoma.training import runner  # noqa: PLC0415

    if args.resume:  # the run's own config.yaml; flags and --set may only repeat its values
        cfg = config_lib.resume_config(out, None, [*_flag_overrides(args)[0], *args.overrides])
    result = runner.train(cfg, out, resume=args.resume, overwrite=args.overwrite, verbose=2)
    raise_if_interrupted()  # a Ctrl-C Python dropped during training still keeps the old model
    fsio.atomic_write_bytes(out / "model.keras", (out / "best.keras").read_bytes())
    m = result.metrics
    summary = {
        "model": m["model"], "params": m["params"], "best_epoch": m["best_epoch"],
        "train_seconds": m["train_seconds_this_process"], **(m.get("test") or {}),
    }  # fmt: skip
    fsio.atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("%s: %s", m["model"], summary)
    return summary


def cmd_train(args) -> int:
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    ablation = "ablation" in args.preset
    names = ABLATION if ablation else (None,)
    runs = [(train_config(args, n), args.out / n if ablation else args.out) for n in names]
    # Before any training or writing: an ablation must not fail at its last model.
    from tfmelanoma.training.tasks import task_of  # noqa: PLC0415

    for cfg, out in runs:
        task_of(cfg).check(cfg)
        _check_out(out, args)
    _check_prepared(runs[0][0])
    rows = [train_one(cfg, out, args) for cfg, out in runs]
    if ablation:
        from tfmelanoma.evaluation.segmentation import write_ablation  # noqa: PLC0415

        write_ablation(rows, args.out)
    return 0


def _eval_source(args, split: str):
    """(SegmentationSplit, file format) for `evaluate`'s data arguments."""
    from tfmelanoma.data import segmentation_sources as sources  # noqa: PLC0415

    if args.data == sources.FOLDER:
        if not (args.images and args.masks):
            raise ValueError("--data folder needs --images and --masks")
        pairs = sources.folder_pairs(args.images, args.masks, limit=args.limit)
        return sources.SegmentationSplit(f"folder:{args.images}", tuple(range(len(pairs))), pairs)
    fmt = "array_record" if _use_numpy(args) else "tfrecord"
    builder = sources.prepared_builder(args.data, args.tfds_data_dir, args.data_dir, fmt)
    if split not in builder.info.splits:
        raise ValueError(f"--split {split}: {args.data} has {', '.join(builder.info.splits)}")
    n = builder.info.splits[split].num_examples
    rows = range(min(n, args.limit) if args.limit else n)
    return sources.SegmentationSplit.of_builder(
        builder, sources.builder_name(args.data), split, rows
    )


def _use_numpy(args) -> bool:
    import keras  # noqa: PLC0415

    if args.pipeline != "auto":
        return args.pipeline == "numpy"
    if keras.backend.backend() != "tensorflow":
        return True
    if args.data == "folder":
        return False
    import tensorflow_datasets as tfds  # noqa: PLC0415

    from tfmelanoma.data.segmentation_sources import builder_name  # noqa: PLC0415
    from tfmelanoma.datasets.access import is_array_record  # noqa: PLC0415

    try:
        builder = tfds.builder(builder_name(args.data), data_dir=args.tfds_data_dir)
        return builder.is_prepared() and is_array_record(builder)
    except Exception:  # not registered / unknown: prepared_builder names the problem
        return False


def cmd_evaluate(args) -> int:
    from tfmelanoma.evaluation import segmentation as report  # noqa: PLC0415
    from tfmelanoma.models.loading import load_model  # noqa: PLC0415

    fsio.check_output_folder(args.out, args.overwrite)  # before anything is loaded
    model = load_model(fsio.expand(args.model))
    height = model.input_shape[1]
    split = _eval_source(args, args.split)
    if _use_numpy(args):
        from tfmelanoma.data.segmentation_numpy import SegmentationBatches  # noqa: PLC0415

        ds, ids = (
            SegmentationBatches(
                split.as_data_source(), image_size=height, batch_size=8, workers=args.workers
            ),
            None,
        )
    else:
        try:
            from tfmelanoma.data import segmentation as tf_pipeline  # noqa: PLC0415
        except ImportError as e:
            raise ToolMissingError(
                f"--pipeline tf.data needs TensorFlow ({e}); use --pipeline numpy (auto does)"
            ) from None
        ds, ids = tf_pipeline.eval_dataset(split, height, 8), tf_pipeline.image_ids(split)
    with fsio.folder_lock(args.out, "report folder"):
        fsio.check_output_folder(args.out, args.overwrite)
        summary = report.evaluate_model(model, ds, ids, args.out, args.threshold)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_predict(args) -> int:
    from tfmelanoma.evaluation.segmentation_predict import predict_folder  # noqa: PLC0415
    from tfmelanoma.models.loading import load_model  # noqa: PLC0415

    for folder in (args.out, args.crop_dir):
        if folder is not None:
            fsio.check_output_folder(folder, args.overwrite, "mask folder")
    model = load_model(fsio.expand(args.model))
    with fsio.folder_lock(args.out, "mask folder"):
        rows = predict_folder(
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
    # Models are written atomically: an interrupted command leaves the old files whole.
    note = "nothing half-written was left behind"
    if args.command == "train":
        note += "; a run with a checkpoint continues with the same command and --resume"
    return run_command(PROG, lambda: commands[args.command](args), on_interrupt=note)


if __name__ == "__main__":
    sys.exit(main())
