"""Train a classifier: `python -m tfmelanoma.train [--config PRESET|FILE] [--set key=value ...]`.

Without arguments it trains MeshNet on the embedded CC0 sample (557 ISIC Archive images) on the
CPU in a few minutes and writes a run folder with checkpoints, logs and an evaluation report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tfmelanoma import config as config_lib
from tfmelanoma.cli import OneLineErrorParser, fail
from tfmelanoma.logging_utils import quiet_tensorflow, setup_logging

PROG = "python -m tfmelanoma.train"


def _config_help() -> str:
    lines = ["config keys (section.key = default; change with --set key=value):"]
    for key, value in config_lib.flat_defaults().items():
        choices = config_lib.CHOICES.get(key)
        extra = f"   [{' | '.join(choices)}]" if choices else ""
        lines.append(f"  {key} = {value!r}{extra}")
    lines.append("")
    lines.append(f"presets: {', '.join(config_lib.presets())}")
    lines.append("examples:")
    lines.append(f"  {PROG}                                   # MeshNet on the embedded sample")
    lines.append(f"  {PROG} --config smoke                    # seconds: checks the whole path")
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
        "--config", default="default", help="preset name or YAML file (default: %(default)s)"
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
        "--run-dir",
        type=Path,
        default=None,
        help="run folder (default: <run.out_dir>/<run.name or model-timestamp>)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in the run folder (default: off)"
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
    return Path(cfg.run.out_dir) / name


def _print_summary(run_dir: Path, metrics: dict) -> None:
    test = metrics.get("test") or {}
    print(f"\nrun folder: {run_dir}")
    print(f"best epoch: {metrics['best_epoch']} of {metrics['epochs_done']}")
    if test:
        print("test metrics (before -> after entropy rejection):")

        def fmt(value) -> str:  # undefined metrics (e.g. no melanoma in the split) are null
            return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"

        for key in ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "auc_roc", "f1"):
            if key in test:
                print(f"  {key:<26} {fmt(test[key])} -> {fmt(test.get(f'{key}_after_rejection'))}")
        for key in (
            "ece_top_label",
            "ece_top_label_temperature",
            "brier_melanoma",
            "coverage",
            "threshold",
        ):
            if key in test:
                print(f"  {key:<26} {fmt(test[key])}")
        print(f"report: {run_dir / 'evaluation' / 'report.md'}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_lib.load_config(args.config, args.overrides)
    except config_lib.ConfigError as e:
        return fail(PROG, e)
    quiet_tensorflow()
    setup_logging(-1 if args.quiet else 0)
    from tfmelanoma.training import runner

    run_dir = resolve_run_dir(cfg, args.run_dir)
    try:
        result = runner.train(
            cfg,
            run_dir,
            resume=args.resume,
            overwrite=args.overwrite,
            verbose=2 if args.quiet or not sys.stdout.isatty() else 1,
        )
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as e:
        return fail(PROG, e)
    # Print what was written, so the terminal shows exactly the numbers in metrics.json.
    _print_summary(result.run_dir, json.loads((result.run_dir / "metrics.json").read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
