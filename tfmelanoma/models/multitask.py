"""Multi-task model (the multi-task paper's M-MTL): shared backbone, diagnosis head + age head.

Any registry classifier is the backbone: its own `logits` → `predictions` head is the diagnosis
head and the age head branches from the same pooled features. Age is either binned (softmax over
age groups, the paper reports age accuracy / F1) or regressed in years. Unknown ages (−1 in the
example schema) get sample weight 0 on the age head, so they count neither in its loss nor in its
weighted metrics, while the image still trains the diagnosis head.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tfmelanoma.models.registry import ModelInfo, create_model, register_model

DEFAULT_AGE_EDGES = (30, 45, 60, 75)  # bins: <30, 30-44, 45-59, 60-74, >=75
AGE_SCALE = 100.0  # the regression unit predicts age / 100; a Rescaling layer outputs years


def _pooled_features(model: keras.Model) -> keras.KerasTensor:
    """The tensor feeding the classifier head (before its dropout)."""
    logits = model.get_layer("logits")
    x = logits.input
    parent = x._keras_history.operation
    if isinstance(parent, keras.layers.Dropout):
        x = parent.input
    return x


def multitask_model(
    backbone: str = "efficientnet_b0",
    num_classes: int = 2,
    age: str = "bins",
    age_edges: Sequence[float] = DEFAULT_AGE_EDGES,
    age_hidden: int = 128,
    age_dropout: float = 0.2,
    **backbone_kwargs,
) -> keras.Model:
    """Builds a diagnosis + age model on a registry backbone.

    Args:
        backbone: registry name of a classifier (e.g. "efficientnet_b0", "meshnet").
        num_classes: diagnosis classes (1 sigmoid, 2 default, K softmax).
        age: "bins" (softmax over `len(age_edges) + 1` groups) or "regression" (years).
        age_edges: increasing bin edges in years, e.g. (30, 45, 60, 75).
        age_hidden: units of the age head's hidden ReLU layer (0: none).
        age_dropout: dropout before the age head's output layer.
        **backbone_kwargs: passed to the backbone factory (input_shape, weights, dropout, ...).

    Returns:
        A `keras.Model` with outputs `{"diagnosis": probs (B, K), "age": (B, n_bins) probs or
        (B, 1) years}`.
    """
    if age not in ("bins", "regression"):
        raise ValueError(f"age must be 'bins' or 'regression', got {age!r}")
    edges = tuple(float(e) for e in age_edges)
    if age == "bins" and (not edges or list(edges) != sorted(set(edges))):
        raise ValueError(f"age_edges must be strictly increasing and non-empty, got {age_edges!r}")
    base = create_model(backbone, num_classes=num_classes, **backbone_kwargs)
    features = _pooled_features(base)
    x = features
    if age_hidden:
        x = keras.layers.Dense(age_hidden, activation="relu", name="age_hidden")(x)
    if age_dropout:
        x = keras.layers.Dropout(age_dropout, name="age_dropout")(x)
    if age == "bins":
        x = keras.layers.Dense(len(edges) + 1, name="age_logits")(x)
        age_out = keras.layers.Activation("softmax", dtype="float32", name="age_bins")(x)
    else:
        x = keras.layers.Dense(1, name="age_unit", dtype="float32")(x)
        age_out = keras.layers.Rescaling(AGE_SCALE, dtype="float32", name="age_years")(x)
    return keras.Model(
        base.input, {"diagnosis": base.output, "age": age_out}, name=f"mmtl_{backbone}"
    )


def age_mode(model: keras.Model) -> str:
    """ "bins" or "regression", read from a multi-task model's layers."""
    names = {layer.name for layer in model.layers}
    if "age_bins" in names:
        return "bins"
    if "age_years" in names:
        return "regression"
    raise ValueError(
        f"model {model.name!r} has no age head (expected layer 'age_bins' or 'age_years')"
    )


def age_to_bin(ages, edges: Sequence[float] = DEFAULT_AGE_EDGES):
    """Age in years → bin index (`keras.ops.digitize`); unknown (< 0) → 0 (give it weight 0)."""
    ages = keras.ops.cast(ages, "float32")
    bins = keras.ops.digitize(ages, list(edges))
    return keras.ops.where(ages < 0, 0, bins)


def age_target(ages, mode: str = "bins", edges: Sequence[float] = DEFAULT_AGE_EDGES):
    """The age head's target for ages in years: a bin index (bins) or (..., 1) years (regression).

    Unknown ages (< 0) get a valid placeholder target (bin 0, 0 years); give them weight 0
    (`age_known`). Works eagerly and inside `tf.data` maps (one age or a batch).
    """
    ages = keras.ops.cast(ages, "float32")
    if mode == "bins":
        return age_to_bin(ages, edges)
    return keras.ops.expand_dims(keras.ops.maximum(ages, 0.0), -1)


def age_known(ages):
    """Sample weight of the age head: 1.0 where the age is known (>= 0), else 0.0."""
    return keras.ops.cast(keras.ops.cast(ages, "float32") >= 0, "float32")


def multitask_targets(model: keras.Model, labels, ages, age_edges: Sequence[float] | None = None):
    """Targets and per-head sample weights for `model.fit` / `train_on_batch`.

    Args:
        model: a `multitask_model`.
        labels: diagnosis labels, int (B,) (or one-hot (B, K) for a softmax head).
        ages: age in years (B,), −1 = unknown.
        age_edges: the bin edges the model was built with (bins mode); default edges if None.

    Returns:
        `(targets, sample_weights)`: dicts keyed "diagnosis" / "age". Unknown ages weigh 0.
    """
    ages = keras.ops.cast(keras.ops.reshape(ages, (-1,)), "float32")
    known = age_known(ages)
    edges = DEFAULT_AGE_EDGES if age_edges is None else age_edges
    labels = keras.ops.convert_to_tensor(labels)
    if model.output["diagnosis"].shape[-1] > 1 and len(labels.shape) == 2:
        labels = keras.ops.argmax(labels, axis=-1)
    targets = {"diagnosis": labels, "age": age_target(ages, age_mode(model), edges)}
    weights = {"diagnosis": keras.ops.ones_like(known), "age": known}
    return targets, weights


@keras.saving.register_keras_serializable(package="tfmelanoma")
class YearsHuber(keras.losses.Huber):
    """`keras.losses.Huber` whose `delta` survives save / load: Keras's own `get_config` drops
    it, so a checkpoint loaded back (`--resume`) would train with delta 1 instead."""

    def get_config(self):
        return {**super().get_config(), "delta": self._fn_kwargs["delta"]}


def age_loss_and_metrics(mode: str) -> tuple[keras.losses.Loss, list[keras.metrics.Metric]]:
    """The age head's loss and metrics, to compile as weighted metrics (unknown ages weigh 0).

    bins: sparse categorical cross-entropy, `accuracy`; regression: Huber (delta 10 years),
    `mae_years`. The loss's reduction is "mean_with_sample_weight": the mean over KNOWN ages (the
    default would divide by the batch size and shrink it by the share of unknown ages).
    """
    reduction = "mean_with_sample_weight"
    if mode == "bins":
        return (
            keras.losses.SparseCategoricalCrossentropy(reduction=reduction),
            [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
    return (
        YearsHuber(delta=10.0, reduction=reduction),
        [keras.metrics.MeanAbsoluteError(name="mae_years")],
    )


def compile_multitask(
    model: keras.Model,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    loss_weights: dict[str, float] | None = None,
    age_loss: str | keras.losses.Loss | None = None,
) -> keras.Model:
    """Compiles a multi-task model with per-head losses, loss weights and weighted metrics.

    Diagnosis: sparse categorical (K >= 2) or binary (K = 1) cross-entropy, accuracy + AUC.
    Age: sparse categorical cross-entropy + accuracy (bins) or Huber + MAE in years
    (regression). Metrics are `weighted_metrics`, so unknown ages (weight 0) are left out.

    Args:
        model: a `multitask_model`.
        optimizer: Keras optimizer or its name.
        loss_weights: per-head weights, default {"diagnosis": 1.0, "age": 0.5}.
        age_loss: override of the age loss.

    Returns:
        The compiled model (same object).
    """
    mode = age_mode(model)
    binary = model.output["diagnosis"].shape[-1] == 1
    reduction = "mean_with_sample_weight"  # as the age head's (`age_loss_and_metrics`)
    if binary:
        diagnosis_loss = keras.losses.BinaryCrossentropy(reduction=reduction)
    else:
        diagnosis_loss = keras.losses.SparseCategoricalCrossentropy(reduction=reduction)
    default_age_loss, age_metrics = age_loss_and_metrics(mode)
    losses = {"diagnosis": diagnosis_loss, "age": age_loss or default_age_loss}
    diagnosis_metrics = [
        keras.metrics.BinaryAccuracy(name="accuracy")
        if binary
        else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    ]
    if binary:
        diagnosis_metrics.append(keras.metrics.AUC(name="auc"))
    model.compile(
        optimizer=optimizer,
        loss=losses,
        loss_weights=loss_weights or {"diagnosis": 1.0, "age": 0.5},
        weighted_metrics={"diagnosis": diagnosis_metrics, "age": age_metrics},
    )
    return model


@register_model(
    ModelInfo(
        name="mmtl",
        family="multitask",
        task="multitask",
        input_size=224,
        preprocessing="that of the backbone (default efficientnet_b0: built into the network)",
        last_conv_layer="top_activation",
        params=4_216_746,
        paper="multi-task paper (M-MTL, diagnosis + age)",
        min_input_size=32,
        imagenet=True,  # its backbone's (efficientnet_b0, efficientnet_lite0...)
    )
)
def mmtl(**kwargs) -> keras.Model:
    """M-MTL on EfficientNet-B0 with binned age; see `multitask_model` for the options."""
    return multitask_model(**kwargs)
