"""Experiment grid: every (training combination × model) cell, one results row per cell.

    python -m tfmelanoma.grid --datasets uncertainty_paper --models meshnet,tinyvgg --config default

Each cell is a `python -m tfmelanoma.train` run in its own process (a crash or out-of-memory in
one cell cannot take the others down) with its own run folder under `<out>/runs/`. After each
cell its row is appended to `<out>/results.csv` atomically (the table is rewritten to a temporary
file and renamed), so an interrupted grid loses at most the cell in flight. A rerun skips cells
whose row says `ok`, resumes interrupted ones (`--resume`) and retries failed ones. At the end
`<out>/summary.md` ranks the cells per test set by precision, as the uncertainty paper does.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from tfmelanoma import fsio
from tfmelanoma.cli import (
    USER_ERRORS,
    HelpFormatter,
    OneLineErrorParser,
    ctrl_c_unmasked,
    fail,
    interrupted,
)
from tfmelanoma.logging_utils import quiet_tensorflow

PROG = "python -m tfmelanoma.grid"
METRICS = (
    "precision", "sensitivity", "specificity", "f1", "accuracy", "balanced_accuracy", "auc_roc",
    "average_precision", "ece_top_label", "brier_melanoma",
)  # fmt: skip


@dataclass(frozen=True)
class Cell:
    combination: str
    train: tuple[str, ...]
    test: str
    model: str

    @property
    def cell_id(self) -> str:
        return f"{self.combination}__{self.model}"


def parse_datasets(spec: str) -> list[tuple[str, tuple[str, ...], str]]:
    """A preset name of `tfmelanoma.datasets.presets`, or `TRAIN[+TRAIN...]:TEST[,...]`.

    Returns:
        (combination name, training datasets, test dataset) per combination.

    Raises:
        ValueError: unknown preset or malformed spec.
    """
    if ":" not in spec:
        from tfmelanoma.datasets import presets

        if spec not in presets.list_presets():
            raise ValueError(
                f"--datasets: unknown preset {spec!r}; presets: {', '.join(presets.list_presets())}"
                " (or give TRAIN[+TRAIN...]:TEST[,...])"
            )
        return [(c.name, tuple(c.train), c.test) for c in presets.get_preset(spec)]
    out = []
    for part in spec.split(","):
        train, sep, test = part.partition(":")
        names = tuple(n.strip() for n in train.split("+") if n.strip())
        if not sep or not names or not test.strip():
            raise ValueError(f"--datasets: {part!r} is not TRAIN[+TRAIN...]:TEST")
        out.append((f"{'+'.join(names)}__{test.strip()}", names, test.strip()))
    return out


def _read_results(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=["cell_id", "status"])
    return pd.read_csv(path, dtype={"cell_id": str, "status": str})


def append_row(path: Path, row: dict) -> pd.DataFrame:
    """Replaces the cell's row (or appends it) and rewrites the table atomically."""
    table = _read_results(path)
    table = table[table["cell_id"] != row["cell_id"]]
    table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    fsio.atomic_write_text(path, table.to_csv(index=False))
    return table


def _row(cell: Cell, run_dir: Path, status: str, seconds: float, error: str = "") -> dict:
    row = {
        "cell_id": cell.cell_id,
        "combination": cell.combination,
        "train": "+".join(cell.train),
        "test": cell.test,
        "model": cell.model,
        "status": status,
        "error": error,
        "wall_seconds": round(seconds, 1),
        "run_dir": str(run_dir),
    }
    metrics_path = run_dir / "metrics.json"
    if status == "ok" and metrics_path.exists():
        summary = json.loads(metrics_path.read_text())
        row.update(
            params=summary.get("params"),
            epochs=summary.get("epochs_done"),
            best_epoch=summary.get("best_epoch"),
            images_per_second=summary.get("train_images_per_second"),
        )
        evaluation = json.loads((run_dir / "evaluation" / "metrics.json").read_text())
        for stage in ("before_rejection", "after_rejection"):
            values = evaluation[stage]["values"]
            suffix = "" if stage == "before_rejection" else "_after_rejection"
            row.update({f"{m}{suffix}": values.get(m) for m in METRICS})
        row["coverage"] = evaluation["rejection"].get("coverage_test")
        row["threshold"] = evaluation["rejection"].get("threshold")
    return row


def own_model_settings(base, model: str) -> list[str]:
    """Overrides that undo the base config's settings made for another model than `model`.

    A preset is written for one model: its `model.options` are that factory's keyword arguments
    (another factory refuses them) and its `model.weights=imagenet` means nothing to a model
    trained from scratch. A cell of another model starts from its own defaults there; the user's
    `--set` overrides come after these and win.
    """
    from tfmelanoma.models import get_model_info

    if model == base.model.name:
        return []
    reset = ["model.options={}"] if base.model.options else []
    if base.model.weights == "imagenet" and not get_model_info(model).imagenet:
        reset.append("model.weights=")
    return reset


def run_cell(
    cell: Cell, out: Path, config: str, overrides: list[str], timeout: float | None
) -> dict:
    """Trains and evaluates one cell in a subprocess; returns its results row."""
    run_dir = out / "runs" / cell.cell_id
    args = [
        sys.executable, "-m", "tfmelanoma.train", "--config", config, "-q",
        *[a for o in overrides for a in ("--set", o)],
        "--set", f"data.train={','.join(cell.train)}",
        "--set", f"data.test={cell.test}",
        "--set", f"model.name={cell.model}",
        "--run-dir", str(run_dir),
    ]  # fmt: skip
    if (run_dir / "checkpoints" / "state.json").exists():
        args.append("--resume")
    started = time.perf_counter()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return _row(
            cell, run_dir, "failed", time.perf_counter() - started, f"timed out after {timeout} s"
        )
    seconds = time.perf_counter() - started
    (out / "logs").mkdir(exist_ok=True)
    fsio.atomic_write_text(out / "logs" / f"{cell.cell_id}.log", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        # The CLI's message starts with "<prog>: error:" (later lines are details); else the
        # last line (a traceback's exception).
        errors = [line for line in lines if ": error: " in line]
        message = (errors or lines[-1:] or [f"exit {proc.returncode}"])[-1]
        return _row(cell, run_dir, "failed", seconds, message)
    return _row(cell, run_dir, "ok", seconds)


def write_summary(table: pd.DataFrame, path: Path) -> None:
    """Markdown: per test set, the finished cells ranked by precision (then AUC)."""
    from tfmelanoma.datasets.report import markdown_table

    lines = ["# Grid summary", "", "Ranked per test set by precision (then AUC-ROC), as in the "
             "uncertainty paper. After-rejection columns use the entropy threshold chosen on "
             "validation.", ""]  # fmt: skip
    done = table[table["status"] == "ok"]
    cols = ["model", "train", "precision", "sensitivity", "specificity", "f1", "accuracy",
            "auc_roc", "ece_top_label", "brier_melanoma", "accuracy_after_rejection", "coverage"]  # fmt: skip
    for test, group in done.groupby("test"):
        ranked = group.sort_values(["precision", "auc_roc"], ascending=False)
        shown = ranked[[c for c in cols if c in ranked]].round(4)
        lines += [f"## Test: {test}", "", markdown_table(shown), ""]
    failed = table[table["status"] != "ok"]
    if len(failed):
        lines += ["## Failed cells", "", markdown_table(failed[["cell_id", "error"]]), ""]
    fsio.atomic_write_text(path, "\n".join(lines))


def build_parser():
    parser = OneLineErrorParser(
        prog=PROG, description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument(
        "--datasets", required=True,
        help="a combination preset (python -m tfmelanoma.datasets presets) or "
        "TRAIN[+TRAIN...]:TEST[,...], e.g. isic2016+isic2017:isic2017,sample:sample",
    )  # fmt: skip
    parser.add_argument("--models", required=True, help="comma-separated registry names")
    parser.add_argument(
        "--config", default="default", help="base preset or YAML (default: %(default)s)"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="config override applied to every cell (repeatable; default: none)",
    )  # fmt: skip
    parser.add_argument(
        "--out",
        type=fsio.expand,
        default=Path("grids/grid"),
        help="grid folder (default: %(default)s)",
    )
    parser.add_argument(
        "--cell-timeout", type=float, default=None, help="seconds per cell (default: no limit)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()  # the model list imports Keras; its cells' logs are quiet on their own
    try:
        from tfmelanoma import config as config_lib
        from tfmelanoma.models import list_models

        base = config_lib.load_config(args.config, args.overrides)  # fail fast on bad keys
        combinations = parse_datasets(args.datasets)
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in models if m not in list_models()]
        if unknown:
            raise ValueError(f"--models: unknown {unknown}; models: {', '.join(list_models())}")
        args.own = {m: own_model_settings(base, m) for m in models}
        for m, reset in args.own.items():
            if reset:
                print(f"{m}: {' '.join(reset)} (the base config's are {base.model.name}'s)")
    except (ValueError, config_lib.ConfigError) as e:
        return fail(PROG, e)
    cells = [Cell(name, train, test, m) for name, train, test in combinations for m in models]
    args.out = fsio.expand(args.out)
    try:
        # One grid per folder: two would rewrite each other's results.csv and train the
        # same cells into the same run folders.
        with ctrl_c_unmasked(), fsio.folder_lock(args.out, "grid folder"):
            return _run_grid(cells, args)
    except KeyboardInterrupt:
        again = " ".join(["python -m tfmelanoma.grid", *map(shlex.quote, sys.argv[1:])])
        return interrupted(
            PROG,
            f"finished cells are in {args.out / 'results.csv'}\ncontinue with the same command "
            f"(finished cells are skipped, the interrupted one resumes from its last epoch): "
            f"{again}",
        )
    except USER_ERRORS as e:
        return fail(PROG, e)


def _run_grid(cells: list[Cell], args) -> int:
    results = args.out / "results.csv"
    table = _read_results(results)
    finished = set(table.loc[table["status"] == "ok", "cell_id"])
    todo = [c for c in cells if c.cell_id not in finished]
    print(f"{len(cells)} cells, {len(cells) - len(todo)} already done, {len(todo)} to run")
    for cell in tqdm(todo, desc="grid", unit="cell"):
        overrides = [*args.own[cell.model], *args.overrides]  # the user's --set win
        row = run_cell(cell, args.out, args.config, overrides, args.cell_timeout)
        table = append_row(results, row)
        if row["status"] != "ok":
            tqdm.write(f"{cell.cell_id}: failed: {row['error']}")
    write_summary(table, args.out / "summary.md")
    n_failed = int((table["status"] != "ok").sum())
    print(f"results: {results}\nsummary: {args.out / 'summary.md'}\nfailed cells: {n_failed}")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
