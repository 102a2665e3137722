"""The multi-task task of the training engine: diagnosis + age (the `mmtl` registry model).

A classification run in every respect (data, `data.balance`, the `diagnosis` output's loss,
metrics, calibration and evaluation report), plus an age head (`models/multitask.py`) trained on
the examples' `age` feature: binned (`model.options.age: bins`, the default, with `age_edges`) or
regressed in years (`age: regression`), its loss weighted by `model.age_loss_weight`. Unknown ages
(-1 in the example schema) weigh 0 on the age head, so they count in neither its loss nor its
metrics; class weights weigh the diagnosis head only.

Logged per epoch: `diagnosis_auc`, `diagnosis_accuracy`, `age_mae_years` (regression) or
`age_accuracy` (bins), `val_` each; the best epoch by `val_diagnosis_auc`. metrics.json: the
classification summary of each test set plus `age_mae_years` (or `age_accuracy`) over its
images with a known age, and `n_age_known`.

The ages travel through tf.data only (`data.pipeline` tf, TensorFlow backend): the NumPy and
decoded-cache pipelines serve (image, label) batches.
"""

from __future__ import annotations

import functools

import keras

from tfmelanoma.config import Config
from tfmelanoma.logging_utils import get_logger
from tfmelanoma.models import multitask
from tfmelanoma.training import devices, inputs
from tfmelanoma.training.tasks import (
    ClassificationTask,
    classifier_optimizer,
    diagnosis_loss_and_metrics,
)

logger = get_logger(__name__)

AGE_MODES = ("bins", "regression")


def age_mode(config: Config) -> str:
    """`model.options.age`: "bins" (the factory's default) or "regression"."""
    return config.model.options.get("age", "bins")


def age_edges(config: Config) -> tuple[float, ...]:
    """`model.options.age_edges`, or the factory's default bin edges."""
    return tuple(
        float(e) for e in config.model.options.get("age_edges", multitask.DEFAULT_AGE_EDGES)
    )


class MultitaskTask(ClassificationTask):
    """Images -> {"diagnosis": class probabilities, "age": bin probabilities or years}."""

    name = "multitask"
    monitor = "val_diagnosis_auc"

    def check(self, config: Config) -> None:
        """The classification checks, plus the pipeline, backend and age head; raises ValueError
        naming the keys."""
        super().check(config)
        if config.data.pipeline not in ("auto", "tf"):
            raise ValueError(
                f"data.pipeline={config.data.pipeline!r}: multitask reads the examples' ages "
                "through tf.data only; use data.pipeline=tf (or auto)"
            )
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "run.task=multitask trains through tf.data (data.pipeline=tf): it needs "
                f"KERAS_BACKEND=tensorflow; the backend is {keras.backend.backend()!r}"
            )
        if config.model.teacher:
            raise ValueError("model.teacher: distillation is for classification, not multitask")
        if age_mode(config) not in AGE_MODES:
            raise ValueError(
                f"model.options.age={age_mode(config)!r}: one of {', '.join(AGE_MODES)}"
            )

    def resolve_pipeline(self, config: Config) -> str:
        return "tf"  # `check` refused every other

    def load_data(self, config: Config, pipeline: str):
        """The classification splits; refuses training data without a single known age."""
        splits = super().load_data(config, pipeline)
        known = {
            name: int((getattr(splits, name).frame["age"] >= 0).sum())
            for name in ("train", "validation", "test")
        }
        if not known["train"]:
            raise ValueError(
                f"data.train={','.join(config.data.train)}: no training image has a known age "
                "(all -1), so the age head has nothing to learn; train on a dataset with ages "
                "(e.g. isic2017, isic2018, isic2020, sample)"
            )
        for name in ("validation", "test"):
            if not known[name]:
                logger.warning("no %s image has a known age: its age metrics are n/a", name)
        splits.summary["known_ages"] = known
        return splits

    def make_inputs(self, config, pipeline, splits, start_epoch, replicas) -> inputs.Inputs:
        age_target = functools.partial(
            multitask.age_target, mode=age_mode(config), edges=age_edges(config)
        )
        return inputs.make_inputs(
            config, pipeline, splits.train, splits.validation, splits.class_weight, start_epoch,
            replicas=replicas, age_target=age_target,
        )  # fmt: skip

    def compile_model(
        self, model: keras.Model, config: Config, steps_per_epoch: int, *, weighted: bool = False
    ) -> None:
        """Per-head losses (the classifier's for `diagnosis`, `age_loss_and_metrics` for `age`)
        weighted 1 : `model.age_loss_weight`, the configured optimizer and schedule; the age
        metric is a weighted metric, so unknown ages (weight 0) are left out of it. (`weighted`
        is for padded validation batches, which tf.data never makes.)"""
        diagnosis_loss, accuracy, auc = diagnosis_loss_and_metrics(config)
        age_loss, age_metrics = multitask.age_loss_and_metrics(age_mode(config))
        model.compile(
            optimizer=classifier_optimizer(config, steps_per_epoch),
            loss={"diagnosis": diagnosis_loss, "age": age_loss},
            loss_weights={"diagnosis": 1.0, "age": config.model.age_loss_weight},
            metrics={"diagnosis": [accuracy, auc]},
            weighted_metrics={"age": age_metrics},
            jit_compile=devices.jit_compile(config),
        )

    def test_metrics(self, model: keras.Model, view, config: Config, pipeline: str) -> dict:
        """The age head on one test set: MAE in years (regression) or bin accuracy (bins) over
        the images with a known age, and how many had one."""
        from tfmelanoma.evaluation import metrics

        age_model = keras.Model(model.input, model.output["age"])
        _, predicted, _ = inputs.predict_view(age_model, view, config, pipeline)
        ages = view.frame["age"].to_numpy()  # predict_view keeps the view's row order
        if age_mode(config) == "regression":
            return metrics.age_mae(ages, predicted)
        return metrics.age_bin_accuracy(ages, predicted, age_edges(config))
