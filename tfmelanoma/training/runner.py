"""One training run: data -> model -> fit (resumable) -> evaluation report, in a run folder.

One engine for every task: `run.task` picks a task object (`tfmelanoma.training.tasks`:
classification, segmentation) that supplies the config checks, inputs, model, loss/metrics,
the monitored metric and the evaluation; everything below is shared.

Run folder layout:
    config.yaml        the resolved config (rerun with `--config <run>/config.yaml`)
    versions.json      library versions, platform, devices
    data.json          split sizes, class counts and what de-duplication removed
    history.csv        per-epoch metrics (epochs from 1); tensorboard/ for TensorBoard
    history.png        the same as curves, training vs validation, best epoch marked
    checkpoints/       epoch-NNNN.keras + state.json naming it; state.json is replaced last,
                       atomically, every epoch: one commit point (resume)
    .lock              held by the process writing the folder (a second writer is refused)
                       (several processes, run.distribute=multiworker: only process 0 writes
                       here; the others keep their checkpoints in a temporary folder, resume
                       from this one's and do not evaluate)
    best.keras         best model by `run.monitor` on validation (auto: val_auc for
                       classification, val_dice for segmentation)
    evaluation/        the evaluation report of best.keras on the test set
                       (several test sets: evaluation/<name>/ each; segmentation:
                       per_image.csv, metrics.json, grid.png)
    metrics.json       summary: test metrics (`test_sets`: per test set; `test`: the first),
                       best epoch, wall time, throughput; with a `run.monitor` other
                       than the task's own metric, where that metric peaked (`task_metric`)

Backend-agnostic Keras 3: on TensorFlow the input is tf.data; on JAX (or torch) it is the TF-free
NumPy pipeline over ArrayRecord (`tfmelanoma.training.inputs`), and TensorFlow is never imported,
so the same command trains on a GPU host without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from tfmelanoma.config import Config, save_config
from tfmelanoma.data import device_augment
from tfmelanoma.errors import RunFolderError
from tfmelanoma.fsio import atomic_write_text, folder_lock
from tfmelanoma.logging_utils import get_logger
from tfmelanoma.training import (
    checkpoints,
    devices,
    inputs,  # noqa: F401  (runner.inputs: what tests patch)
    optim,
    progress,
    tasks,
)
from tfmelanoma.training.data import Splits
from tfmelanoma.training.tasks import class_names  # noqa: F401  (re-exported)

logger = get_logger(__name__)


__all__ = ["RunFolderError", "RunResult", "train"]


@dataclass
class RunResult:
    """The run folder and summary metrics; `chief` is False in processes other than 0 of a
    multi-host run, which write nothing there (their metrics: the training figures only)."""

    run_dir: Path
    metrics: dict
    chief: bool = True


def check_config(config: Config) -> None:
    """Validates cross-field constraints of the config's task before any data is read.

    Raises:
        ValueError: with the keys involved.
    """
    tasks.task_of(config).check(config)


def build_model(config: Config) -> keras.Model:
    """The task's registry model for `config` (not compiled)."""
    return tasks.task_of(config).build_model(config)


def compile_model(
    model: keras.Model, config: Config, steps_per_epoch: int, *, weighted: bool = False
) -> None:
    """Compiles with the task's loss and metrics and the configured optimizer and schedule."""
    tasks.task_of(config).compile_model(model, config, steps_per_epoch, weighted=weighted)


def _prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> checkpoints.RunState | None:
    """Checks what the run folder holds against resume/overwrite; call holding its lock."""
    state = checkpoints.load_state(run_dir / "checkpoints")
    if state is not None and not (resume or overwrite):
        raise RunFolderError(
            f"{run_dir} already holds a run (epoch {state.epochs_done}); pass --resume to continue "
            "it, --overwrite to start again, or choose another run.name"
        )
    if overwrite and not resume:
        state = None
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        for stale in ("best.keras", "history.csv", "history.png", "metrics.json", "data.json"):
            (run_dir / stale).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "evaluation", ignore_errors=True)
    for leftover in run_dir.glob(".*.tmp*"):  # a killed writer's temporary files
        leftover.unlink(missing_ok=True)
    return state if resume else None


def train(
    config: Config,
    run_dir: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    verbose: int = 1,
    progress_every: float = 0.0,
) -> RunResult:
    """Trains, checkpoints and evaluates one config.

    Args:
        config: the resolved config.
        run_dir: the run folder.
        resume: continue from `run_dir/checkpoints` if it holds a run.
        overwrite: start again in a folder that already holds a run.
        verbose: Keras progress output (1 = bar, 2 = one line per epoch).
        progress_every: with verbose=2, also a line every this many seconds inside an epoch
            (step, images/s, ETA), for logs; 0 = none.

    Returns:
        The run folder and the summary metrics.
    """
    task = tasks.task_of(config)
    task.check(config)
    run_dir = Path(run_dir)
    if resume and not (run_dir / "config.yaml").is_file():
        raise RunFolderError(
            f"{run_dir}: no run to resume (no config.yaml there); drop --resume to start a new run"
        )
    devices.configure(config)  # before anything compiles: compile cache, multi-host join
    pipeline = task.resolve_pipeline(config)
    # Before any data is read: fails fast. tf.data is sharded between processes by Keras.
    placement = devices.placement(config, shards_itself=pipeline != "tf")
    if not devices.is_chief():
        return _train_follower(task, config, run_dir, resume, verbose, placement, pipeline)
    created = not run_dir.exists()
    with folder_lock(run_dir, "run folder"):
        try:
            return _train_locked(
                task, config, run_dir, resume, overwrite, verbose, progress_every, placement,
                pipeline,
            )  # fmt: skip
        except BaseException:
            # A run that failed before its first checkpoint leaves no stub folder behind.
            if created and not (run_dir / "checkpoints" / "state.json").exists():
                shutil.rmtree(run_dir, ignore_errors=True)
            raise


def _train_follower(
    task, config: Config, run_dir: Path, resume: bool, verbose: int, placement, pipeline: str
) -> RunResult:
    """A process other than 0 of a multi-host run: trains in step with the others, writes its
    checkpoints to a temporary folder (resuming from process 0's, which must be readable here,
    e.g. a shared folder), skips the evaluation and leaves `run_dir` alone."""
    config = dataclasses.replace(config, run=dataclasses.replace(config.run, evaluate=False))
    with tempfile.TemporaryDirectory(prefix=f"tfmelanoma-p{devices.process_index()}-") as tmp:
        scratch = Path(tmp) / "run"
        scratch.mkdir()
        state = checkpoints.load_state(run_dir / "checkpoints") if resume else None
        if state is not None:
            (scratch / "checkpoints").mkdir()
            for name in ("state.json", state.model_file):
                shutil.copy2(run_dir / "checkpoints" / name, scratch / "checkpoints" / name)
        result = _train_locked(
            task, config, scratch, state is not None, False, verbose, 0.0, placement, pipeline
        )
    return RunResult(run_dir, result.metrics, chief=False)


def _train_locked(
    task,
    config: Config,
    run_dir: Path,
    resume: bool,
    overwrite: bool,
    verbose: int,
    progress_every: float,
    placement: devices.Placement,
    pipeline: str,
) -> RunResult:
    state = _prepare_run_dir(run_dir, resume, overwrite)
    if not resume or not (run_dir / "config.yaml").exists():
        save_config(config, run_dir / "config.yaml")
    if not resume or not (run_dir / "versions.json").exists():
        atomic_write_text(run_dir / "versions.json", json.dumps(devices.versions(), indent=2))

    splits = task.load_data(config, pipeline)
    atomic_write_text(run_dir / "data.json", json.dumps(splits.summary, indent=2, default=str))
    start_epoch = state.epochs_done if state else 0
    data = task.make_inputs(config, pipeline, splits, start_epoch, placement.replicas)
    # Several processes: each feeds its rows of every global batch (devices.local_rows).
    if not data.per_process:
        data.train = devices.per_process(data.train)
        data.validation = devices.per_process(data.validation)
    steps = data.steps
    logger.info(
        "%s backend, %s pipeline, %d replica(s) (%s)",
        keras.backend.backend(),
        pipeline,
        placement.replicas,
        placement.engine,
    )

    # Seed after the data is loaded: preparing a dataset draws from Python's `random` (temp
    # folder names), which Keras's default seed generator is derived from.
    keras.utils.set_random_seed(config.run.seed)
    monitor = tasks.monitor_of(config)
    checkpoint = checkpoints.ResumableCheckpoint(
        run_dir / "checkpoints",
        run_dir / "best.keras",
        monitor=monitor,
        patience=config.run.early_stopping,
        state=state,
    )
    callbacks = [
        *data.callbacks,
        # Before the checkpoint: an epoch's row is on disk before state.json commits the epoch.
        progress.HistoryCSV(
            str(run_dir / "history.csv"), resume_after=start_epoch if state else None
        ),
        checkpoint,
    ]
    if config.optimizer.ema_momentum:
        # Validation scores the averaged weights; the checkpoint saves them as best.keras.
        callbacks.insert(0, keras.callbacks.SwapEMAWeights())
    if progress_every and verbose == 2:
        callbacks.append(
            progress.StepProgress(steps, config.run.batch_size, config.run.epochs, progress_every)
        )
    if importlib.util.find_spec("tensorflow") is not None:  # its summary writer needs TensorFlow
        callbacks.append(
            keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False)
        )
    else:
        logger.info("TensorFlow is not installed: no TensorBoard logs (history.csv has them)")
    with placement.scope:
        if state is not None:
            logger.info("resuming %s after epoch %d", run_dir, state.epochs_done)
            model = keras.models.load_model(run_dir / "checkpoints" / state.model_file)
            checkpoints.restore_seed_states(model, state)
            if (data.wrap is None) != (
                device_augment.inner_model(_student(model)) is _student(model)
            ):
                raise RunFolderError(
                    f"{run_dir}: the checkpoint was trained with another data.pipeline than "
                    f"{pipeline!r} (augmentation in the step or not); resume with the run's own "
                    "pipeline (see its metrics.json / config.yaml)"
                )
        else:
            model = task.build_model(config)
            if data.wrap is not None:  # what fit trains; best.keras stays the model alone
                model = data.wrap(model)
            if config.model.teacher:
                from tfmelanoma.training import distill

                model = distill.Distiller(
                    model,
                    distill.load_teacher(config.model.teacher),
                    alpha=config.model.distill_alpha,
                    temperature=config.model.distill_temperature,
                )
            optim.check_ema(config.optimizer, _student(model))
            task.compile_model(model, config, steps, weighted=data.padded)
        params = device_augment.inner_model(model).count_params()
        logger.info("%s: %s parameters", config.model.name, f"{params:,}")
        started = time.perf_counter()
        if start_epoch < config.run.epochs and not (
            state and config.run.early_stopping and state.wait >= config.run.early_stopping
        ):
            model.fit(
                data.train,
                epochs=config.run.epochs,
                initial_epoch=start_epoch,
                steps_per_epoch=steps,
                validation_data=data.validation,
                validation_steps=data.validation_steps,
                callbacks=callbacks,
                shuffle=False,  # the pipeline shuffles, seeded
                verbose=verbose,
            )
    train_seconds = time.perf_counter() - started
    epochs_run = checkpoint.state.epochs_done - start_epoch

    summary = {
        "task": task.name,
        "model": config.model.name,
        "params": int(params),
        "backend": keras.backend.backend(),
        "pipeline": pipeline,
        **({"teacher": config.model.teacher} if config.model.teacher else {}),
        "replicas": placement.replicas,
        "processes": placement.processes,
        "distribution": placement.engine,
        "best_epoch": checkpoint.state.best_epoch,
        f"best_{monitor}": checkpoint.state.best,
        "epochs_done": checkpoint.state.epochs_done,
        "train_seconds_this_process": round(train_seconds, 2),
        "train_images_per_second": round(
            epochs_run * steps * config.run.batch_size / train_seconds, 1
        )
        if epochs_run and train_seconds > 0
        else None,
    }
    if monitor != task.monitor:
        peak = _peak_of(run_dir / "history.csv", task.monitor, checkpoint.state.best_epoch)
        if peak:
            summary["task_metric"] = peak
    _plot_history(run_dir, checkpoint.state.best_epoch)
    if config.run.evaluate:
        summary["test_sets"] = task.evaluate(config, splits, run_dir, pipeline)
        summary["test"] = next(iter(summary["test_sets"].values()))  # the first test set
    atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=2, default=float))
    return RunResult(run_dir, summary)


def _peak_of(history_csv: Path, metric: str, best_epoch: int) -> dict | None:
    """Where the task's own validation metric stood when `run.monitor` picks another one: its
    value at the kept epoch and its best epoch (from history.csv; None without the column).

    The two can part: a distilled student's validation loss follows how well its probabilities
    fit the validation split's class mix, which a teacher trained on another mix pulls away from,
    while its ranking (val_auc) keeps improving. Reported, not acted on: which to keep is the
    recipe's choice (`run.monitor`).
    """
    import csv

    try:
        with history_csv.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get(metric) not in (None, "")]
        values = {int(r["epoch"]): float(r[metric]) for r in rows}
    except (OSError, KeyError, ValueError) as e:
        logger.warning("%s: no %s per epoch: %s", history_csv, metric, e)
        return None
    if not values:
        return None
    maximise = checkpoints.ResumableCheckpoint.maximises(metric)
    top = (max if maximise else min)(values, key=values.get)
    return {
        "metric": metric,
        "at_best_epoch": values.get(best_epoch),
        "best": values[top],
        "best_epoch": top,
    }


def _plot_history(run_dir: Path, best_epoch: int) -> None:
    """history.png: the curves of history.csv (a plot failure is logged, never ends the run)."""
    from tfmelanoma.evaluation import plots

    try:
        if plots.training_curves(run_dir / "history.csv", run_dir / "history.png", best_epoch):
            logger.info("training curves: %s", run_dir / "history.png")
    except (OSError, ValueError) as e:  # e.g. a history.csv edited by hand
        logger.warning("no training curves: %s: %s", run_dir / "history.csv", e)


def _evaluate(config: Config, splits: Splits, run_dir: Path, pipeline: str) -> dict:
    """The classification task's evaluation reports (`tasks.ClassificationTask.evaluate`)."""
    return tasks.ClassificationTask().evaluate(config, splits, run_dir, pipeline)


def _student(model: keras.Model) -> keras.Model:
    """The model inside a distillation wrapper (`model` itself when it is not one)."""
    inner = getattr(model, "inner", None)
    return inner if isinstance(inner, keras.Model) else model
