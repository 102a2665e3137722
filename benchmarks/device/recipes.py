"""Issues #18's and #16's GPU runs, one device call each, with the toolkit's own commands.

    python benchmarks/device/recipes.py kaggle224 --data .gpu-data --out $OUT [--budget 540]
    python benchmarks/device/recipes.py seg256 --data .gpu-data --out $OUT
    python benchmarks/device/recipes.py webstudent --data .gpu-data --out $OUT
    python benchmarks/device/recipes.py webstudent224 --data .gpu-data --out $OUT

`kaggle224`: EfficientNet-Lite0 (ImageNet weights from `<data>/efficientnet-lite0-fp16.pth`) on
Kaggle fanconic at 224 px with the `transfer` preset and the split of docs/results.md's CPU rows
(`data.val_fraction=0.15`, `data.split_seed=0`): first the CPU row's 15 epochs (seed 0), then 30
epochs with seeds 0 and 1, then the ensemble of those three, fixed before any was evaluated.
`seg256`: AER-Net (Lite0 ImageNet encoder) on ISIC 2017 at the paper's 256 px, 25 epochs,
best epoch by validation Dice, warm-up + cosine; then the plain U-Net with the same budget.
`webstudent` (issue #16 item 4): the web demo's ensemble teacher and its MeshNet student, as the
CPU rows of docs/webdemo.md trained them, with the student trained longer: Lite0 on the
leak-free combination (`webdemo_teacher` preset, 16 epochs), Lite0 on Kaggle `train/` merged
against all three test sets (`xd_kaggle`, 15 epochs), then the MeshNet distilled from the two
(`webdemo` preset on the combination, `distill_alpha` 0.1, T 4) for STUDENT_EPOCHS epochs.
`webstudent224` (issue #16 item 4, the step the CPU cannot take in one session): teachers like
those of the best CPU student (0.941 on Kaggle, docs/webdemo.md, "The 224 px teachers'
student"): two Lite0 at 224 px on Kaggle `train/`, seeds 0 and 1, each merged against all three
test sets as `xd_kaggle` is (so neither saw a twin of a test image), trained on webstudent's
carry: the 128 px images resized to 224 px, what `training/distill.py` feeds a teacher of the
128 px student (on the CPU this cost the teacher nothing on Kaggle: 0.955 either way). Then
webstudent's combination teacher: without it the student learns ISIC 2017 and UDA-1 only from
Kaggle-trained teachers (a CPU student of one Kaggle teacher reached validation AUC 0.79 where
the four-teacher one reached 0.86), and validation, mostly those collections, cannot pick its
epoch. Then the MeshNet distilled from the three for STUDENT224_EPOCHS epochs, the epoch kept
by validation AUC (`run.monitor=val_auc`: with teachers of Kaggle's class mix the preset's
lowest validation loss comes at epoch 3). Each teacher runs under its own time limit, so that
a slow machine still leaves the student its time.

Each step is a subprocess under a time limit taken from what is left of `--budget`; a step that
cannot get `--min-step` seconds is skipped and listed. After every step `<out>/recipes.json` is
rewritten (command, exit status, wall time, the run's figures and per-epoch history) and the
step's output is appended to `<out>/log`; the three Kaggle models and webstudent's two teachers
come back as `<step>.keras`, the student's whole run folder (without checkpoints) as
`<step>.tar.gz`, to evaluate and export here (at most 8 files return from a device call).
`--smoke` shrinks every step to a seconds-long CPU check of the same commands (sample dataset,
32 px, MeshNet / a tiny U-Net, 1 epoch).

Prepare the carry here with `python benchmarks/device/make_data.py --recipe kaggle224` (or
`seg256`, `webstudent`; `webstudent224` uses webstudent's carry) and
`bash benchmarks/device/make_carry.sh`; run with
`benchmarks/device/run_recipes.sh`.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WEIGHTS = "efficientnet-lite0-fp16.pth"
"""The Lite0 ImageNet backbone, kernels in float16 (make_data.py --recipe): 6.6 MiB, not 18.8 MB."""

KAGGLE_SPLIT = [
    "data.train=kaggle_fanconic", "data.test=kaggle_fanconic", "data.val_fraction=0.15",
    "data.split_seed=0",
]  # fmt: skip

STUDENT_EPOCHS = 60
"""1.5x the best CPU student's 40 (docs/webdemo.md), which still underfitted its teacher."""

STUDENT224_EPOCHS = 30
"""As the 224 px teachers' CPU student (0.941 on Kaggle at its last epoch): what is left of the
budget after the teachers' limits holds 30 MeshNet epochs on the H200 (2-3 s each)."""

TEACHER224_LIMIT = 110
"""Seconds for each 224 px Kaggle teacher: the H200's kaggle224 steps took 140 s (15 epochs, 71 s
of it XLA compiling), then 79 and 72 s (the compilation cache warm). A teacher stopped at its
limit teaches with its best epoch so far (`best.keras`, written on every improvement)."""

COMB_TEACHER_LIMIT = 150
"""Seconds for the combination teacher (webstudent's took 172 s, early-stopped at epoch 12 of 16,
best 8); with the two Kaggle teachers' limits that leaves the student at least 180 s of a 550 s
budget (BUDGET=560)."""


RECIPES = ("kaggle224", "seg256", "webstudent", "webstudent224")


@dataclass
class Step:
    name: str
    argv: list[str]
    """Arguments after `python -m`."""
    run_dir: Path
    kind: str
    """train | evaluate | segment: where its figures are."""
    keep_model: bool = False
    """Bring back `best.keras` as `<name>.keras` (also after a timeout: the best epoch so far)."""
    keep_run: bool = False
    """Bring back the run folder, without its per-epoch checkpoints and TensorBoard logs, as
    `<name>.tar.gz`: what `evaluate`, `export.fit_gate` and `export.tfjs` read here."""
    limit: float | None = None
    """At most this many seconds, whatever is left of the budget (None: what is left)."""


def _sets(pairs: list[str]) -> list[str]:
    return [a for p in pairs for a in ("--set", p)]


def plan(recipe: str, data: Path, work: Path, smoke: bool = False) -> list[Step]:
    """The recipe's steps, in the order they run."""
    weights = str(data / WEIGHTS)
    if recipe == "kaggle224":
        common = ["tfmelanoma.train", "-q", "--config", "transfer"]
        sets = [
            f"data.data_dir={data}", f"model.weights={weights}", "data.image_size=224",
            *KAGGLE_SPLIT,
        ]  # fmt: skip
        if smoke:  # the sample, 32 px, MeshNet, 1 short epoch: the commands, not a result
            sets += [
                "data.train=sample", "data.test=sample", "data.image_size=32", "model.name=meshnet",
                "model.weights=", "model.options={width: 4}", "run.batch_size=16",
                "run.steps_per_epoch=2", "optimizer.head_warmup_epochs=0",
            ]  # fmt: skip
        runs = [
            ("lite0_224_s0_e15", 0, 15),
            ("lite0_224_s0_e30", 0, 30),
            ("lite0_224_s1_e30", 1, 30),
        ]
        steps = []
        for name, seed, epochs in runs:
            epochs = 1 if smoke else epochs
            run_dir = work / name
            argv = [*common, "--run-dir", str(run_dir)]
            argv += _sets([*sets, f"run.seed={seed}", f"run.epochs={epochs}"])
            steps.append(Step(name, argv, run_dir, "train", keep_model=True))
        ensemble = work / "ensemble3"
        argv = ["tfmelanoma.evaluate", *[a for s in steps for a in ("--model", str(s.run_dir))]]
        steps.append(Step("ensemble3", [*argv, "--out", str(ensemble)], ensemble, "evaluate"))
        return steps
    if recipe == "seg256":
        common = [
            "tfmelanoma.segment", "train", "--data", "isic2017", "--tfds-data-dir", str(data),
            "--seed", "0",
            *_sets(["optimizer.schedule=warmup_cosine", "optimizer.warmup_epochs=1"]),
        ]  # fmt: skip
        size = ["--image-size", "32", "--limit", "8", "--val-limit", "4", "--batch-size", "4"]
        size += ["--epochs", "1", "--workers", "2"]
        aernet = ["--preset", "paper", "--model", "aernet", "--encoder", "efficientnet_lite0"]
        full = ["--epochs", "25", "--workers", "12"]
        aernet += ["--weights", weights, *(size if smoke else full)]
        unet = ["--preset", "paper", "--model", "unet"]
        unet += [*size, "--base-filters", "4", "--depth", "2"] if smoke else full
        return [
            Step(name, [*common, *args, "--out", str(work / name)], work / name, "segment")
            for name, args in (("aernet_lite0_256_e25", aernet), ("unet_256_e25", unet))
        ]
    if recipe == "webstudent":
        return _webstudent(data, work, weights, smoke)
    if recipe == "webstudent224":
        return _webstudent224(data, work, weights, smoke)
    raise ValueError(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")


def _web_data() -> dict:
    """The `webdemo_teacher` preset's data section: the web model's training data, gallery
    exclusion and three test sets, which the student (a `webdemo` preset run) and the Kaggle
    teacher are given too, so that all three merge against the same test sets and the student
    excludes and splits exactly as its combination teacher."""
    import yaml

    preset = Path(__file__).resolve().parents[2] / "tfmelanoma/configs/webdemo_teacher.yaml"
    return yaml.safe_load(preset.read_text())["data"]


def _web_sets(data: Path, weights: str, smoke: bool) -> tuple[list, str, list, list]:
    """The `--set` pairs the web recipes share: the combination (train, tests, gallery
    exclusion), its test sets alone, a Lite0 teacher's, and the smoke form's shrinking."""
    web = _web_data()
    tests = f"data.test={web['test']}"
    combination = [
        f"data.train=[{', '.join(web['train'])}]", tests,
        f"data.exclude=[{', '.join(web['exclude'])}]",
    ]  # fmt: skip
    lite0 = [f"data.data_dir={data}", f"model.weights={weights}"]
    tiny = []
    if smoke:  # the sample at 32 px, tiny MeshNets, 1 short epoch: the commands, not a result
        tiny = [
            "data.train=sample", "data.test=sample", "data.image_size=32", "run.batch_size=16",
            "run.steps_per_epoch=2", "run.epochs=1",
        ]  # fmt: skip
        lite0 += ["model.name=meshnet", "model.weights=", "model.options={width: 4}",
                  "optimizer.head_warmup_epochs=0"]  # fmt: skip
    return combination, tests, lite0, tiny


def _webstudent(data: Path, work: Path, weights: str, smoke: bool) -> list[Step]:
    combination, tests, lite0, tiny = _web_sets(data, weights, smoke)
    lite0 += ["run.seed=0"]
    train = ["tfmelanoma.train", "-q"]
    teacher, kaggle, student = (work / n for n in ("teacher_comb_e16", "teacher_kaggle_e15",
                                                   f"student_a01_t4_e{STUDENT_EPOCHS}"))  # fmt: skip
    teacher_sets = [*combination, *lite0, "run.epochs=16", "run.early_stopping=4"]
    kaggle_sets = [
        "data.train=kaggle_fanconic", tests, "data.val_fraction=0.15", "data.image_size=128",
        *lite0, "run.epochs=15",
    ]  # fmt: skip
    student_sets = [
        *combination, f"data.data_dir={data}", "run.seed=0", f"model.teacher={teacher}, {kaggle}",
        "model.distill_alpha=0.1", "model.distill_temperature=4", f"run.epochs={STUDENT_EPOCHS}",
    ]  # fmt: skip
    if smoke:
        student_sets += ["model.options={width: 4}"]
    return [
        Step(teacher.name, [*train, "--config", "webdemo_teacher", "--run-dir", str(teacher),
                            *_sets([*teacher_sets, *tiny])], teacher, "train", keep_model=True),
        Step(kaggle.name, [*train, "--config", "transfer", "--run-dir", str(kaggle),
                           *_sets([*kaggle_sets, *tiny])], kaggle, "train", keep_model=True),
        Step(student.name, [*train, "--config", "webdemo", "--run-dir", str(student),
                            *_sets([*student_sets, *tiny])], student, "train", keep_run=True),
    ]  # fmt: skip


def _webstudent224(data: Path, work: Path, weights: str, smoke: bool) -> list[Step]:
    combination, tests, lite0, tiny = _web_sets(data, weights, smoke)
    train = ["tfmelanoma.train", "-q"]
    steps = []
    for seed in (0, 1):
        run_dir = work / f"teacher_kaggle224_s{seed}_e15"
        sets = [
            "data.train=kaggle_fanconic", tests, "data.val_fraction=0.15", "data.image_size=224",
            *lite0, f"run.seed={seed}", "run.epochs=15", *tiny,
        ]  # fmt: skip
        argv = [*train, "--config", "transfer", "--run-dir", str(run_dir), *_sets(sets)]
        steps.append(Step(run_dir.name, argv, run_dir, "train", keep_model=True,
                          limit=TEACHER224_LIMIT))  # fmt: skip
    comb = work / "teacher_comb_e16"  # webstudent's combination teacher
    sets = [*combination, *lite0, "run.seed=0", "run.epochs=16", "run.early_stopping=4", *tiny]
    argv = [*train, "--config", "webdemo_teacher", "--run-dir", str(comb), *_sets(sets)]
    steps.append(Step(comb.name, argv, comb, "train", keep_model=True, limit=COMB_TEACHER_LIMIT))
    student = work / f"student224_a01_t4_e{STUDENT224_EPOCHS}"
    sets = [
        *combination, f"data.data_dir={data}", "run.seed=0",
        f"model.teacher={', '.join(str(s.run_dir) for s in steps)}",
        "model.distill_alpha=0.1", "model.distill_temperature=4",
        f"run.epochs={STUDENT224_EPOCHS}", "run.monitor=val_auc", *tiny,
    ]  # fmt: skip
    if smoke:
        sets += ["model.options={width: 4}"]
    argv = [*train, "--config", "webdemo", "--run-dir", str(student), *_sets(sets)]
    return [*steps, Step(student.name, argv, student, "train", keep_run=True)]


def _history(run_dir: Path) -> dict[str, list]:
    path = run_dir / "history.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) if r[k] else None for r in rows] for k in (rows[0] if rows else {})}


def figures(step: Step) -> dict:
    """What the step's own files say: test metrics, best epoch, time, history."""
    run = step.run_dir
    if step.kind == "train":
        m = json.loads((run / "metrics.json").read_text())
        keys = ("model", "params", "backend", "pipeline", "best_epoch", "best_val_auc",
                "epochs_done", "train_seconds_this_process", "train_images_per_second")  # fmt: skip
        return {**{k: m.get(k) for k in keys}, "test": m["test"], "history": _history(run)}
    if step.kind == "evaluate":
        return {"test": json.loads((run / "metrics.json").read_text())["summary"]}
    return {**json.loads((run / "summary.json").read_text()), "history": _history(run)}


def archive_run(run_dir: Path, path: Path) -> None:
    """`run_dir` as a gzipped tar whose top folder is the run's name, without `checkpoints/`
    (per-epoch resume state) and `tensorboard/`."""
    skip = {"checkpoints", "tensorboard"}

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        return None if len(parts) > 1 and parts[1] in skip else info

    with tarfile.open(path, "w:gz") as tar:
        tar.add(run_dir, arcname=run_dir.name, filter=keep)


def run(recipe: str, data: Path, out: Path, work: Path, budget: float, min_step: float,
        smoke: bool = False) -> dict:  # fmt: skip
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    result = {"recipe": recipe, "smoke": smoke, "budget_s": budget, "steps": {}, "skipped": []}
    report = out / "recipes.json"

    def save():
        tmp = report.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1, default=str))
        tmp.replace(report)

    save()
    for step in plan(recipe, data, work, smoke):
        left = budget - (time.monotonic() - t0)
        if step.limit is not None:
            left = min(left, step.limit)
        if left < min_step:
            result["skipped"].append(step.name)
            save()
            continue
        command = [sys.executable, "-m", *step.argv]
        started = time.monotonic()
        with open(out / "log", "a") as log:
            log.write(f"\n### {step.name} (limit {left:.0f} s): {' '.join(command)}\n")
            log.flush()
            try:
                rc = subprocess.run(
                    command, stdout=log, stderr=subprocess.STDOUT, timeout=left
                ).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        entry = {
            "command": " ".join(step.argv),
            "exit": rc,
            "wall_s": round(time.monotonic() - started, 1),
        }
        if rc == 0:
            try:
                entry.update(figures(step))
            except (OSError, ValueError, KeyError) as e:
                entry["error"] = f"{type(e).__name__}: {e}"
        elif step.kind == "train":  # how far it got: the epochs done, and the best one kept
            entry["history"] = _history(step.run_dir)
        if step.keep_model and (step.run_dir / "best.keras").is_file():
            shutil.copy2(step.run_dir / "best.keras", out / f"{step.name}.keras")
        if step.keep_run and step.run_dir.is_dir():
            archive_run(step.run_dir, out / f"{step.name}.tar.gz")
        result["steps"][step.name] = entry
        save()
        test = entry.get("test") or {}
        line = f"{step.name}: exit {rc}, {entry['wall_s']} s"
        if "auc_roc" in test:
            line += f", test AUC {test['auc_roc']:.4f}, accuracy {test['accuracy']:.4f}"
        if "dice" in entry:
            line += f", validation Dice {entry['dice']:.4f} (best epoch {entry['best_epoch']})"
        print(line, flush=True)
    result["wall_s"] = round(time.monotonic() - t0, 1)
    save()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe", choices=RECIPES)
    p.add_argument("--data", type=Path, default=Path(".gpu-data"), help="the carried data folder")
    p.add_argument("--out", type=Path, required=True, help="$OUT: recipes.json, log, models")
    p.add_argument("--work", type=Path, default=None, help="run folders (default: a temp folder)")
    p.add_argument("--budget", type=float, default=540, help="seconds for all steps")
    p.add_argument("--min-step", type=float, default=60, help="skip a step with less time left")
    p.add_argument("--smoke", action="store_true", help="tiny CPU form of the same commands")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="recipes-"))
    result = run(args.recipe, args.data.resolve(), args.out, work, args.budget, args.min_step,
                 args.smoke)  # fmt: skip
    failed = [n for n, s in result["steps"].items() if s["exit"] != 0 or "error" in s]
    print(f"SUMMARY {args.recipe}: {len(result['steps'])} steps, failed {failed or 'none'}, "
          f"skipped {result['skipped'] or 'none'}, {result['wall_s']} s")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
