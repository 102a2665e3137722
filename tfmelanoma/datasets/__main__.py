"""Command line: ``python -m tfmelanoma.datasets {report,presets,label-table}``.

Examples::

    python -m tfmelanoma.datasets report --train isic2016,isic2017,ph2 --test isic2017 \\
        --data-dir ~/tensorflow_datasets --out reports/isic2017
    python -m tfmelanoma.datasets report --preset uncertainty_paper --cell 5 --data-dir ... --out ...
    python -m tfmelanoma.datasets presets uncertainty_paper
    python -m tfmelanoma.datasets label-table --write docs/datasets.md
"""

from __future__ import annotations

import argparse
import sys

from tfmelanoma.datasets import dedup
from tfmelanoma.logging_utils import quiet_tensorflow


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tfmelanoma.datasets",
        description="Leak-free dataset combinations: reports, presets, the label-map table.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="merge datasets and write a report folder")
    r.add_argument("--train", default="", help="comma-separated training datasets, in priority")
    r.add_argument("--test", default=None, help="test dataset (official test split or held out)")
    r.add_argument("--preset", default=None, help="take --train/--test from a preset cell")
    r.add_argument("--cell", type=int, default=0, help="0-based cell of --preset")
    r.add_argument("--data-dir", default=None, help="TFDS data directory")
    r.add_argument("--out", required=True, help="report folder (created)")
    r.add_argument("--val-fraction", type=float, default=0.2)
    r.add_argument("--test-fraction", type=float, default=0.2)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--rules", default=",".join(dedup.RULES), help="de-dup rules to apply")
    r.add_argument(
        "--max-distance", type=int, default=dedup.DEFAULT_MAX_DISTANCE, help="pHash threshold"
    )
    r.add_argument("--keep-train-duplicates", action="store_true", help="skip stage 6")
    pr = sub.add_parser("presets", help="list presets, or the cells of one preset")
    pr.add_argument("name", nargs="?", default=None)
    lt = sub.add_parser("label-table", help="print the label map as Markdown")
    lt.add_argument("--write", default=None, help="update the table inside this Markdown file")
    lt.add_argument("--check", default=None, help="exit 1 if this file's table is out of date")
    return p


def _report(args) -> int:
    from tfmelanoma.datasets import load_combination, presets, report

    train, test = args.train, args.test
    if args.preset:
        cells = presets.get_preset(args.preset)
        if not 0 <= args.cell < len(cells):
            print(f"error: --cell must be in [0, {len(cells) - 1}]", file=sys.stderr)
            return 2
        train, test = list(cells[args.cell].train), cells[args.cell].test
    if not train and not test:
        print("error: give --train and/or --test (or --preset)", file=sys.stderr)
        return 2
    comb = load_combination(
        train,
        test,
        data_dir=args.data_dir,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        rules=[r.strip() for r in args.rules.split(",") if r.strip()],
        max_distance=args.max_distance,
        dedup_train=not args.keep_train_duplicates,
    )
    print(report.render_terminal(comb))
    paths = report.write_report(comb, args.out)
    print(
        f"\nreport written to {paths['markdown'].parent} ({', '.join(p.name for p in paths.values())})"
    )
    return 0


def _presets(args) -> int:
    from tfmelanoma.datasets import presets

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
    quiet_tensorflow()  # keep the terminal table readable
    args = _parser().parse_args(argv)
    handlers = {"report": _report, "presets": _presets, "label-table": _label_table}
    try:
        return handlers[args.command](args)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
