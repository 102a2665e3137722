"""Command line: ``python -m tfmelanoma.datasets {report,presets,label-table}``.

Examples::

    python -m tfmelanoma.datasets report --train sample --test sample --out reports/sample
    python -m tfmelanoma.datasets report --train isic2016,isic2017,ph2 --test isic2017 \\
        --manual-dir ~/downloads --out reports/isic2017
    python -m tfmelanoma.datasets report --preset uncertainty_paper --cell 5 --out ...
    python -m tfmelanoma.datasets presets uncertainty_paper
    python -m tfmelanoma.datasets label-table --write docs/datasets.md

Arguments are parsed before anything heavy is imported (pandas, TensorFlow Datasets), so
``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from tfmelanoma.cli import OneLineErrorParser, run_command
from tfmelanoma.datasets import presets
from tfmelanoma.datasets.rules import DEFAULT_MAX_DISTANCE, RULE_MEANINGS, RULES
from tfmelanoma.fsio import expand

PROG = "python -m tfmelanoma.datasets"
TRAIN_PROG = "python -m tfmelanoma.train"

_NAMES = (
    "dataset names as `python -m tfmelanoma.train` takes them: `sample` (the embedded 557-image "
    "CC0 set, prepared on first use) or a builder of tfds_builders/ such as isic2017, "
    "kaggle_fanconic or isic2017/classification_512"
)


def _report_epilog() -> str:
    width = max(map(len, RULES))
    lines = ["--rules accepts a comma-separated subset of (in attribution order):"]
    lines += [f"  {rule:<{width}}  {RULE_MEANINGS[rule]}" for rule in RULES]
    lines += [
        "",
        textwrap.fill(
            f"{_NAMES}. A dataset that is not prepared yet is prepared from --manual-dir, as "
            "`train` does.",
            90,
        ),
        "",
        "examples:",
        f"  {PROG} report --train sample --test sample --out reports/sample",
        f"  {PROG} report --train kaggle_fanconic --test kaggle_fanconic \\",
        "      --manual-dir ~/downloads --out reports/kaggle",
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        prog=PROG,
        description="Leak-free dataset combinations: reports, presets, the label-map table.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{report,presets,label-table}")
    r = sub.add_parser(
        "report",
        help="merge datasets and write a report folder",
        description="Merge datasets (de-duplicated, patient-grouped splits) and write a report.",
        epilog=_report_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument(
        "--train",
        default="",
        metavar="NAMES",
        help="comma-separated training datasets, in priority order (default: none)",
    )
    r.add_argument(
        "--test",
        default=None,
        metavar="NAMES",
        help="comma-separated test sets; NAME:SPLIT names a split (NAME:all: every split). A "
        "dataset not in --train is used whole; a training dataset gives its official test split, "
        "else a held-out part (default: none)",
    )
    r.add_argument(
        "--preset",
        default=None,
        choices=presets.list_presets(),
        help="take --train/--test from a cell of this preset (default: none)",
    )
    r.add_argument(
        "--cell", type=int, default=0, help="0-based cell of --preset (default: %(default)s)"
    )
    r.add_argument(
        "--data-dir",
        type=expand,
        default=None,
        help="TFDS data directory (default: $TFDS_DATA_DIR, else ~/tensorflow_datasets)",
    )
    r.add_argument(
        "--manual-dir",
        type=expand,
        default=None,
        help="folder with the manual downloads, to prepare a dataset on first use; "
        "<dir>/<dataset> is used when it exists (default: none: only `sample` and datasets "
        "already prepared)",
    )
    r.add_argument("--out", type=expand, required=True, help="report folder (created; required)")
    r.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="validation share for datasets without a validation split (default: %(default)s)",
    )
    r.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="held-out share when the test dataset has no test split (default: %(default)s)",
    )
    r.add_argument(
        "--seed", type=int, default=0, help="seed of the grouped splits (default: %(default)s)"
    )
    r.add_argument(
        "--rules",
        default=",".join(RULES),
        help=f"de-dup rules to apply, any of {', '.join(RULES)} (default: %(default)s)",
    )
    r.add_argument(
        "--max-distance",
        type=int,
        default=DEFAULT_MAX_DISTANCE,
        help="pHash Hamming threshold in bits for the phash rule (default: %(default)s)",
    )
    r.add_argument(
        "--no-verify",
        action="store_true",
        help="trust pHash matches without the pixel check (faster; look-alike lesions with "
        "colliding hashes are then removed too) (default: off)",
    )
    r.add_argument(
        "--no-contact-sheets",
        action="store_true",
        help="skip removed_NNN.png / rejected_NNN.png, the image pairs of every removal "
        "(default: off)",
    )
    r.add_argument(
        "--keep-train-duplicates",
        action="store_true",
        help="skip stage 6, the removal of repeated images inside training (default: off)",
    )
    pr = sub.add_parser(
        "presets",
        help="list presets, or the cells of one preset",
        description="List presets, or the cells of one preset.",
    )
    pr.add_argument(
        "name",
        nargs="?",
        default=None,
        choices=presets.list_presets(),
        help="a preset (default: list them all)",
    )
    lt = sub.add_parser(
        "label-table",
        help="print the label map as Markdown",
        description="Print the label map as a Markdown table, or keep a file's copy in sync.",
    )
    lt.add_argument(
        "--write",
        type=expand,
        default=None,
        help="update the table inside this Markdown file (default: print it)",
    )
    lt.add_argument(
        "--check",
        type=expand,
        default=None,
        help="exit 1 if this file's table is out of date (default: no check)",
    )
    return p


def _split_names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _prepare(names: list[str], args) -> None:
    """Prepares each dataset as `train` does; the error of one that cannot be says how."""
    from tfmelanoma.datasets import get_builder

    data_dir = str(args.data_dir) if args.data_dir else None
    manual_dir = str(args.manual_dir) if args.manual_dir else None
    for name in names:
        get_builder(name, data_dir, manual_dir=manual_dir)


def _report(args) -> int:
    from tfmelanoma.logging_utils import quiet_tensorflow

    quiet_tensorflow()  # before TensorFlow Datasets loads TensorFlow
    from tfmelanoma.datasets.access import builder_name, quiet_progress_bars

    quiet_progress_bars()
    from tfmelanoma.datasets import load_combination, report
    from tfmelanoma.datasets.combination import TestSet, parse_tests

    train, test = _split_names(args.train), args.test
    if args.preset:
        cells = presets.get_preset(args.preset)
        if not 0 <= args.cell < len(cells):
            raise ValueError(f"--cell must be in [0, {len(cells) - 1}] for preset {args.preset}")
        train, test = list(cells[args.cell].train), cells[args.cell].test
    if not train and not test:
        raise ValueError("give --train and/or --test (or --preset)")
    tests = parse_tests(test)
    _prepare(list(dict.fromkeys([*train, *(t.dataset for t in tests)])), args)
    comb = load_combination(
        [builder_name(n) for n in train],
        [TestSet(builder_name(t.dataset), t.split) for t in tests] or None,
        data_dir=str(args.data_dir) if args.data_dir else None,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        rules=_split_names(args.rules),
        max_distance=args.max_distance,
        dedup_train=not args.keep_train_duplicates,
        verify=not args.no_verify,
    )
    print(report.render_terminal(comb))
    paths = report.write_report(comb, args.out, contact_sheets=not args.no_contact_sheets)
    sheets = [p for k, p in paths.items() if "_sheet_" in k]
    paths = {k: p for k, p in paths.items() if "_sheet_" not in k}
    names = ", ".join(p.name for p in paths.values())
    if sheets:
        names += f", {len(sheets)} contact sheet(s)"
    print(f"\nreport written to {paths['markdown'].parent} ({names})")
    return 0


def _presets(args) -> int:
    if args.name is None:
        for name in presets.list_presets():
            print(f"{name}: {len(presets.get_preset(name))} cells")
        return 0
    for i, spec in enumerate(presets.get_preset(args.name)):
        print(f"{i:3d}  {spec.name:<32} train={','.join(spec.train)} test={spec.test}")
    return 0


def _label_table(args) -> int:
    from tfmelanoma.datasets import label_table

    if args.check:
        ok = label_table.sync_docs(args.check, check=True)
        print("up to date" if ok else f"{args.check}: label-map table is out of date")
        return 0 if ok else 1
    if args.write:
        label_table.sync_docs(args.write)
        print(f"updated {args.write}")
        return 0
    print(label_table.render_label_table())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tfmelanoma-datasets`` / ``python -m tfmelanoma.datasets``."""
    args = _parser().parse_args(argv)  # first: --help and usage errors need nothing heavy
    handlers = {"report": _report, "presets": _presets, "label-table": _label_table}
    return run_command(
        PROG,
        lambda: handlers[args.command](args),
        on_interrupt="a dataset being prepared is finished by the next run",
    )


if __name__ == "__main__":
    sys.exit(main())
