"""Train a model: `python -m tfmelanoma.train [--config PRESET|FILE] [--set key=value ...]`.

Classification by default; `--task segmentation` (or `--config segmentation_smoke`) trains a
lesion segmentation model with the same engine (`python -m tfmelanoma.segment train` is the
same with the segment tool's flags); `--task multitask` (or `--config multitask`) trains the
diagnosis + age model `mmtl`.

Without arguments it trains MeshNet on the embedded CC0 sample (557 ISIC Archive images) on the
CPU in a few minutes and writes a run folder with checkpoints, logs and an evaluation report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

from tfmelanoma import config as config_lib
from tfmelanoma.cli import (
    USER_ERRORS,
    OneLineErrorParser,
    ctrl_c_unmasked,
    fail,
    interrupted,
    message_of,
)
from tfmelanoma.fsio import expand
from tfmelanoma.logging_utils import quiet_tensorflow, setup_logging

PROG = "python -m tfmelanoma.train"


def _config_help() -> str:
    lines = [
        "config keys (section.key = value in the 'default' preset, which a run without --config "
        "uses; change with --set key=value):"
    ]
    for key, value in config_lib.flat(config_lib.load_config("default")).items():
        choices = config_lib.CHOICES.get(key)
        extra = f"   [{' | '.join(choices)}]" if choices else ""
        lines.append(f"  {key} = {value!r}{extra}")
    lines.append("")
    lines.append(f"presets: {', '.join(config_lib.presets())}")
    lines.append("examples:")
    lines.append(f"  {PROG}                                   # MeshNet on the embedded sample")
    lines.append(f"  {PROG} --config smoke                    # seconds: checks the whole path")
    lines.append(
        f"  {PROG} --config segmentation_smoke --set data.manual_dir=../shared/data/isic2017"
    )
    lines.append(
        f"  {PROG} --config small_cnn --set data.train=kaggle_fanconic --set data.test=kaggle_fanconic"
    )
    lines.append(
        f"  {PROG} --set model.name=tinyvgg --set run.epochs=5 --resume --set run.name=my_run"
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
        epilog=_config_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        default=None,
        help="preset name or YAML file (default: 'default'; with --resume: the run's own "
        "config.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set run.epochs=5 (repeatable; default: none)",
    )
    parser.add_argument(
        "--task",
        choices=["classification", "segmentation", "multitask"],
        default=None,
        help="shorthand for --set run.task=...; segmentation (multitask) without --config starts "
        "from the segmentation_paper (multitask) preset (default: the config's task)",
    )
    parser.add_argument(
        "--run-dir",
        type=expand,
        default=None,
        help="run folder (default: <run.out_dir>/<run.name or model-timestamp>)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir with its own config.yaml; --config/--set may only "
        "repeat its values (default: off)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start again in a run folder that already holds a run (default: off)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="one log line per epoch, no bars (default: off)"
    )
    return parser


def resolve_run_dir(cfg: config_lib.Config, run_dir: Path | None) -> Path:
    if run_dir is not None:
        return run_dir
    name = cfg.run.name or f"{cfg.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return expand(cfg.run.out_dir) / name


def _resume_command(run_dir: Path) -> str:
    return f"{PROG} --run-dir {run_dir} --resume"


def _saved_epoch(run_dir: Path) -> int | None:
    """The epoch of the run's last checkpoint, or None (none yet, or unreadable)."""
    from tfmelanoma.training import checkpoints

    try:
        state = checkpoints.load_state(run_dir / "checkpoints")
    except USER_ERRORS:
        return None
    return None if state is None else state.epochs_done


def _interrupted(run_dir: Path) -> int:
    """Ctrl-C: where the checkpoint is and the exact command that continues the run."""
    epoch = _saved_epoch(run_dir)
    if epoch is None:
        return interrupted(PROG, "before the first checkpoint; nothing to resume")
    return interrupted(
        PROG,
        f"the checkpoint after epoch {epoch} is in {run_dir / 'checkpoints'}\n"
        f"continue with: {_resume_command(run_dir)}",
    )


def _kept(run_dir: Path) -> str:
    """What survives a failed write, and the command that goes on from it."""
    epoch = _saved_epoch(run_dir)
    if epoch is None:
        return ""
    return (
        f"\nthe checkpoint after epoch {epoch} is kept; once the folder is writable, "
        f"continue with: {_resume_command(run_dir)}"
    )


def _load(args) -> tuple[config_lib.Config, Path]:
    """The config and run folder; with --resume, the run's own config (see runner.resume_config)."""
    if args.task:
        args.overrides = [f"run.task={args.task}", *args.overrides]
        presets = {"segmentation": "segmentation_paper", "multitask": "multitask"}
        if args.task in presets and not args.config and not args.resume:
            args.config = presets[args.task]
    if not args.resume:
        cfg = config_lib.load_config(args.config or "default", args.overrides)
        return cfg, resolve_run_dir(cfg, args.run_dir)
    given = config_lib.load_config(args.config, args.overrides) if args.config else None
    if args.run_dir is None:
        named = given or config_lib.load_config("default", args.overrides)
        if not named.run.name:
            raise config_lib.ConfigError(
                "--resume needs the run folder: --run-dir <folder> (or --set run.name=<name>)"
            )
        args.run_dir = resolve_run_dir(named, None)
    return config_lib.resume_config(args.run_dir, given, args.overrides), args.run_dir


def _print_summary(run_dir: Path, metrics: dict) -> None:
    """What the run's numbers mean, in words, with their intervals (from metrics.json)."""
    import textwrap

    test = metrics.get("test") or {}
    print(f"\nrun folder: {run_dir}")
    print(f"best epoch: {metrics['best_epoch']} of {metrics['epochs_done']}")
    peak = metrics.get("task_metric")
    if peak and peak.get("best_epoch") != metrics["best_epoch"]:
        there = peak.get("at_best_epoch")
        there = f"{there:.3f}" if isinstance(there, (int, float)) else "n/a"
        print(
            f"  {peak['metric']} there: {there}; its best, {peak['best']:.3f}, at epoch "
            f"{peak['best_epoch']} (run.monitor chose the kept epoch; the checkpoint of the last "
            "epoch is in checkpoints/)"
        )
    if not test:
        return
    if metrics.get("task") == "segmentation":
        print(f"\n{test.get('split')} ({test.get('n_images')} images), mean per image at 0.5:")
        for key in ("dice", "jaccard", "thresholded_jaccard"):
            if isinstance(test.get(key), (int, float)):
                print(f"  {key:<20} {test[key]:.4f}")
        print(f"report: {run_dir / 'evaluation'} (per_image.csv, metrics.json, grid.png)")
        return

    def num(key: str, d: dict = test) -> str:  # undefined metrics (no melanoma in a split): null
        value = d.get(key)
        if not isinstance(value, (int, float)):
            return "n/a"
        low, high = d.get(f"{key}_ci_low"), d.get(f"{key}_ci_high")
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            return f"{value:.2f} ({low:.2f}-{high:.2f})"
        return f"{value:.2f}"

    n = test.get("n_test")
    level = test.get("confidence_level", 0.95)
    print(
        f"\ntest set{f' ({n} images)' if n else ''}: value ({level:.0%} bootstrap interval, "
        "the spread to expect from another test set of this size)"
    )
    rows = (
        ("auc_roc", "AUC-ROC", "how well P(melanoma) ranks melanomas above the rest; 0.5 = chance"),
        ("sensitivity", "sensitivity", "melanomas flagged, at the plain 0.5 cut-off"),
        ("specificity", "specificity", "non-melanomas cleared, at the plain 0.5 cut-off"),
        ("balanced_accuracy", "balanced accuracy", "mean of sensitivity and specificity"),
        ("accuracy", "accuracy", "share of all images right (depends on the class mix)"),
    )
    for key, label, meaning in rows:
        if key in test:
            print(f"  {label:<18} {num(key):<18} {meaning}")
    target, cut = test.get("target_sensitivity"), test.get("operating_threshold")
    if isinstance(cut, (int, float)):
        print(
            f"operating point for screening: melanoma when "
            f"{test.get('operating_probabilities') or 'P(melanoma)'} >= {cut:.3f}, the cut-off "
            f"that reaches {target:.0%} sensitivity on validation"
        )
        for key in ("sensitivity", "specificity"):
            valid = test.get(f"operating_{key}_validation")
            on_val = f"validation {valid:.2f}" if isinstance(valid, (int, float)) else ""
            print(f"  {key:<18} {num(f'operating_{key}'):<18} on test ({on_val})")
    elif target is not None:
        print(f"operating point ({target:.0%} sensitivity): none chosen, see the report")
    if "ece_top_label" in test:
        after = test.get("ece_top_label_temperature")
        temp = test.get("temperature")
        scaled = (
            f" -> {after:.2f} after temperature scaling (T = {temp:.2f}, fitted on validation)"
            if isinstance(after, (int, float)) and isinstance(temp, (int, float))
            else ""
        )
        print(
            f"calibration error (ECE, 0 = probabilities mean what they say): "
            f"{test['ece_top_label']:.2f}{scaled}"
        )
    threshold, rejected = test.get("threshold"), test.get("n_rejected")
    if threshold is None:
        print("uncertain predictions: none rejected (no validation data to choose a threshold)")
    elif rejected == 0:
        print(f"uncertain predictions: none rejected at entropy threshold {threshold:.2f}")
    else:
        coverage = test.get("coverage")
        print(
            f"uncertain predictions: entropy above {threshold:.2f} is referred to a human: "
            f"{rejected if rejected is not None else '?'} test images"
            + (f", {coverage:.0%} kept" if isinstance(coverage, (int, float)) else "")
        )
        for key in ("accuracy", "sensitivity", "specificity"):
            after = test.get(f"{key}_after_rejection")
            if key in test and isinstance(after, (int, float)):
                print(f"  {key:<18} {test[key]:.2f} -> {after:.2f} on the images kept")
    if "n_age_known" in test:  # run.task=multitask: the age head
        age = test.get("age_mae_years", test.get("age_accuracy"))
        what = "MAE in years" if "age_mae_years" in test else "age-group accuracy"
        shown = f"{age:.2f}" if isinstance(age, (int, float)) and age == age else "n/a"
        print(f"age head: {what} {shown} over the {test['n_age_known']} images with a known age")
    if test.get("rejection_note"):
        print(
            textwrap.fill(test["rejection_note"], 100, initial_indent="  ", subsequent_indent="  ")
        )
    sets = list(metrics.get("test_sets") or {})
    if len(sets) > 1:  # data.test=a,b: one report each (runner._evaluate), the numbers above: a's
        print(f"test sets: {', '.join(sets)} (the numbers above are {sets[0]}'s)")
        for name in sets:
            folder = name.replace("/", "_").replace(":", "_")
            print(f"report ({name}): {run_dir / 'evaluation' / folder / 'report.md'}")
        return
    print(f"report: {run_dir / 'evaluation' / 'report.md'}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        return fail(PROG, "--resume and --overwrite exclude each other")
    try:
        cfg, run_dir = _load(args)  # before TensorFlow is imported: a bad value fails at once
    except USER_ERRORS as e:
        return fail(PROG, e)
    quiet_tensorflow()
    setup_logging(-1 if args.quiet else args.verbose)
    from tfmelanoma.training import runner

    try:
        with ctrl_c_unmasked():
            result = runner.train(
                cfg,
                run_dir,
                resume=args.resume,
                overwrite=args.overwrite,
                verbose=2 if args.quiet or not sys.stdout.isatty() else 1,
                # In a log file (no terminal): a line every 30 s inside an epoch, unless -q.
                progress_every=0 if args.quiet or sys.stdout.isatty() else 30,
            )
    except KeyboardInterrupt:
        return _interrupted(run_dir)
    except USER_ERRORS as e:
        if isinstance(e, OSError) and e.errno is not None:  # disk full, read-only, permissions
            return fail(PROG, f"{message_of(e)} (writing the run folder {run_dir}){_kept(run_dir)}")
        return fail(PROG, e)
    if not result.chief:  # process > 0 of a multi-host run: process 0 writes and evaluates
        print(f"trained; process 0 writes the run folder {result.run_dir} and its evaluation")
        return 0
    # Print what was written, so the terminal shows exactly the numbers in metrics.json.
    _print_summary(result.run_dir, json.loads((result.run_dir / "metrics.json").read_text()))
    return 0


class _CallableModule(types.ModuleType):
    """This module, callable as the public `tfmelanoma.train(config, run_dir, ...)`.

    The package attribute `tfmelanoma.train` is the function until this module is imported;
    then Python binds the attribute to the module, which therefore calls the same function.
    """

    def __call__(self, *args, **kwargs):
        from tfmelanoma import _train

        return _train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
