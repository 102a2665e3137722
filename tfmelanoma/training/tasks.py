"""The tasks the one training engine (`runner`) drives: classification, segmentation and
multi-task (diagnosis + age, `multitask_task.py`).

A task supplies what differs between them; the runner owns the rest (run folder, lock, resume,
checkpoints and best.keras, history.csv/png, schedules, seeds, metrics.json, errors):

    check(config)                    cross-field checks, before any data is read
    resolve_pipeline(config)         "tf", "tf_cached", "numpy" or "grain" for this backend and data
    load_data(config, pipeline)      the splits, with `.summary` for data.json
    make_inputs(...)                 training and validation batches (`inputs.Inputs`)
    build_model(config), compile_model(model, config, steps, weighted)
    evaluate(config, data, run_dir, pipeline)   reports of best.keras -> {test set: summary}
    monitor                          the validation metric `run.monitor=auto` means
"""

from __future__ import annotations

from pathlib import Path

import keras

from tfmelanoma import labels
from tfmelanoma.config import Config
from tfmelanoma.logging_utils import get_logger
from tfmelanoma.training import devices, inputs
from tfmelanoma.training.optim import make_optimizer

logger = get_logger(__name__)


def class_names(config: Config) -> list[str]:
    """Class names in model-output order for the configured label."""
    if config.data.label == "harmonised_diagnosis":
        return list(labels.HARMONISED_CLASSES)
    return list(labels.BINARY_CLASSES)


def _check_common(config: Config, task: str):
    """The registry model's info, once its task and the run sizes are known to fit."""
    from tfmelanoma.models import get_model_info

    info = get_model_info(config.model.name)  # unknown name -> error listing the names
    if info.task != task:
        raise ValueError(
            f"model.name: {config.model.name!r} is a {info.task} model but run.task is {task!r}; "
            f"set run.task={info.task} (or choose a {task} model)"
        )
    if config.run.batch_size < 1 or config.run.epochs < 1:
        raise ValueError("run.batch_size and run.epochs must be >= 1")
    return info


def diagnosis_loss_and_metrics(
    config: Config,
) -> tuple[keras.losses.Loss, keras.metrics.Metric, keras.metrics.Metric]:
    """(loss, accuracy, AUC) of a classifier's output for `model.num_classes` and label
    smoothing: binary cross-entropy on one sigmoid unit, else categorical on one-hot targets."""
    k = config.model.num_classes
    smoothing = config.optimizer.label_smoothing
    if k == 1:
        return (
            keras.losses.BinaryCrossentropy(label_smoothing=smoothing),
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc"),
        )
    return (
        keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
        keras.metrics.CategoricalAccuracy(name="accuracy"),
        # One-vs-rest AUC averaged over classes; for two softmax classes the melanoma AUC.
        keras.metrics.AUC(name="auc", multi_label=True, num_labels=k),
    )


def classifier_optimizer(config: Config, steps_per_epoch: int):
    """The configured optimizer and schedule; with a pretrained backbone (`model.weights`), the
    transfer recipe's per-layer rates. Classification and multi-task compile with it."""
    return make_optimizer(
        config.optimizer,
        steps_per_epoch,
        config.run.epochs,
        layer_rates=bool(config.model.weights),  # a pretrained backbone: the recipe
    )


class ClassificationTask:
    """Images -> class probabilities; evaluation by `tfmelanoma.evaluation.evaluate_predictions`."""

    name = "classification"
    monitor = "val_auc"

    def check(self, config: Config) -> None:
        """Raises ValueError naming the keys involved."""
        info = _check_common(config, self.name)
        k = len(class_names(config))
        if config.model.num_classes not in (k, 1) or (config.model.num_classes == 1 and k != 2):
            raise ValueError(
                f"model.num_classes={config.model.num_classes} does not fit data.label="
                f"{config.data.label!r} ({k} classes: use {k}{' or 1' if k == 2 else ''})"
            )
        if config.model.loss not in ("auto", "crossentropy"):
            raise ValueError(
                f"model.loss={config.model.loss!r} is a segmentation loss; classification "
                "trains with cross-entropy (auto)"
            )
        for key in ("limit", "val_limit"):
            if getattr(config.data, key):
                raise ValueError(f"data.{key} is for segmentation; classification uses every row")
        if config.model.teacher:
            from tfmelanoma.training.distill import teacher_files

            try:
                teacher_files(config.model.teacher)
            except FileNotFoundError as e:
                raise ValueError(str(e)) from None
        min_size = getattr(info, "min_input_size", 32) or 32
        if config.data.image_size < min_size:
            raise ValueError(
                f"data.image_size={config.data.image_size} is too small for "
                f"{config.model.name!r} (minimum {min_size})"
            )

    def resolve_pipeline(self, config: Config) -> str:
        pipeline = inputs.resolve_pipeline(config)
        if pipeline == "tf_cached" and config.data.pipeline == "auto":
            tfrecord = inputs.tfrecord_datasets(config)
            if tfrecord:  # prepared for tf.data already: keep it rather than refuse them
                logger.info(
                    "data.pipeline=auto: %s prepared as TFRecord, so tf.data decodes every epoch "
                    "(prepare them as ArrayRecord for tf_cached: decode once, augment in the step)",
                    ", ".join(tfrecord),
                )
                return "tf"
        return pipeline

    def load_data(self, config: Config, pipeline: str):
        from tfmelanoma.training.data import load_splits

        return load_splits(config, file_format=inputs.file_format(pipeline))

    def make_inputs(self, config, pipeline, splits, start_epoch, replicas) -> inputs.Inputs:
        return inputs.make_inputs(
            config, pipeline, splits.train, splits.validation, splits.class_weight, start_epoch,
            replicas=replicas,
        )  # fmt: skip

    def build_model(self, config: Config) -> keras.Model:
        """Creates the registry model with the configured options, classes and input size."""
        from tfmelanoma.models import create_model

        kwargs = dict(config.model.options)
        kwargs.update(
            num_classes=config.model.num_classes,
            input_shape=(config.data.image_size, config.data.image_size, 3),
        )
        if config.model.weights:
            kwargs["weights"] = config.model.weights
        return create_model(config.model.name, **kwargs)

    def compile_model(
        self, model: keras.Model, config: Config, steps_per_epoch: int, *, weighted: bool = False
    ) -> None:
        """Compiles with the configured loss, optimizer and schedule, accuracy and AUC.

        Args:
            weighted: count sample weights in accuracy and AUC (`weighted_metrics`): needed
                where validation batches are padded with zero-weight examples (data-parallel
                NumPy pipeline); training metrics are then weighted by class weights too.
        """
        loss, accuracy, auc = diagnosis_loss_and_metrics(config)
        model.compile(
            optimizer=classifier_optimizer(config, steps_per_epoch),
            loss=loss,
            metrics=None if weighted else [accuracy, auc],
            weighted_metrics=[accuracy, auc] if weighted else None,
            jit_compile=devices.jit_compile(config),
        )

    def evaluate(self, config: Config, splits, run_dir: Path, pipeline: str) -> dict:
        """Evaluation reports of `best.keras` on each test set, calibrated on validation.

        One test set: `evaluation/`; several (`data.test=ph2,derm7pt`): `evaluation/<name>/`
        each. Runs outside the distribution scope: one device predicts, so no batch has to
        split evenly.

        Returns:
            test set name -> its summary.
        """
        from tfmelanoma.evaluation import evaluate_predictions

        model = keras.models.load_model(run_dir / "best.keras")
        y_val, p_val, _ = inputs.predict_view(model, splits.validation, config, pipeline)
        test_sets = splits.test_sets or {config.data.test: splits.test}
        summaries = {}
        for name, view in test_sets.items():
            y_test, p_test, ids = inputs.predict_view(model, view, config, pipeline)
            out_dir = run_dir / "evaluation"
            if len(test_sets) > 1:
                out_dir = out_dir / name.replace("/", "_").replace(":", "_")
            result = evaluate_predictions(
                y_test,
                p_test,
                ids,
                class_names(config),
                out_dir,
                val_labels=y_val,
                val_probs=p_val,
                config={"bootstrap_seed": config.run.seed},
                target_sensitivity=config.eval.target_sensitivity,
            )
            summaries[name] = {
                **result["summary"],
                **self.test_metrics(model, view, config, pipeline),
            }
        return summaries

    def test_metrics(self, model: keras.Model, view, config: Config, pipeline: str) -> dict:
        """Metrics of `model` on one test set besides the classification report (none here)."""
        return {}


def task_of(config: Config):
    """The task object `run.task` names."""
    if config.run.task == "segmentation":
        from tfmelanoma.training.segmentation_task import SegmentationTask

        return SegmentationTask()
    if config.run.task == "multitask":
        from tfmelanoma.training.multitask_task import MultitaskTask

        return MultitaskTask()
    return ClassificationTask()


def monitor_of(config: Config) -> str:
    """`run.monitor`, with `auto` resolved to the task's own validation metric."""
    return task_of(config).monitor if config.run.monitor == "auto" else config.run.monitor
