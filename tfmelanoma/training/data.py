"""Train / validation / test splits for a training config, through the merge step.

TensorFlow-free: the splits are index views (`SplitView`) that become a tf.data dataset or a
`tfds.data_source`-backed sequence only when the training pipeline asks for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tfmelanoma.config import Config
from tfmelanoma.datasets.materialise import SplitView
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)


@dataclass
class Splits:
    """The three splits of a combination, plus what the merge step reported.

    Attributes:
        train, validation, test: `tfmelanoma.datasets.SplitView`s (`.as_tf_dataset()`,
            `.as_data_source()`, `.frame`).
        class_weight: class -> weight when `data.balance` asks for weights, else None.
        summary: sizes, class counts, removed duplicates, for `data.json`.
        test_sets: test set name as `data.test` gives it ("ph2", "derm7pt:test") -> its rows;
            `test` is all of them together.
    """

    train: SplitView
    validation: SplitView
    test: SplitView
    class_weight: dict[int, float] | None = None
    summary: dict = field(default_factory=dict)
    test_sets: dict[str, SplitView] = field(default_factory=dict)


def load_splits(config: Config, *, file_format: str = "tfrecord") -> Splits:
    """Loads the configured combination: de-duplicated against the test set, patient-grouped.

    Args:
        config: the run config (`data` section).
        file_format: how datasets not prepared yet are prepared: "tfrecord" for tf.data,
            "array_record" for the TF-free pipeline.

    Raises:
        tfmelanoma.errors.DatasetError: unknown dataset (listing the valid names), or one not
            prepared and not preparable here (the message says how).
        ValueError: an empty split.
    """
    from tfmelanoma import datasets
    from tfmelanoma.datasets.access import builder_name
    from tfmelanoma.datasets.combination import TestSet, parse_tests

    d = config.data
    tests = parse_tests(d.test)
    for name in dict.fromkeys([*d.train, *(t.dataset for t in tests)]):
        datasets.get_builder(
            name, d.data_dir or None, manual_dir=d.manual_dir or None, file_format=file_format
        )
    # The user's names ("sample", "ph2:all") -> the builders' ("isic_archive/sample:all").
    resolved = {t.name: TestSet(builder_name(t.dataset), t.split) for t in tests}
    combination = datasets.load_combination(
        train=[builder_name(n) for n in d.train],
        test=list(resolved.values()),
        data_dir=d.data_dir or None,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        seed=config.split_seed,
        exclude=d.exclude,
    )
    views = {
        "train": combination.train,
        "validation": combination.validation,
        "test": combination.test,
    }
    by_builder = combination.test_sets
    test_sets = {name: by_builder[t.name] for name, t in resolved.items()}
    for name, view in {**views, **{f"test set {n!r}": v for n, v in test_sets.items()}}.items():
        if len(view) == 0:
            raise ValueError(f"the {name} split of train={list(d.train)} test={d.test!r} is empty")
    label_key = d.label
    class_weight = None
    if d.balance in ("inverse", "effective"):
        weights = combination.class_weights(d.balance, column=label_key)
        class_weight = {int(c): float(w) for c, w in weights.items()}
    summary = {
        "train": list(d.train),
        "test": d.test,
        "label": label_key,
        "sizes": {n: len(v) for n, v in views.items()},
        "test_set_sizes": {n: len(v) for n, v in test_sets.items()},
        "class_counts": {
            n: np.bincount(
                v.frame[label_key].to_numpy(dtype=np.int64),
                minlength=max(config.model.num_classes, 2),
            ).tolist()
            for n, v in views.items()
        },
        "class_weight": class_weight,
        "combination": combination.summary().splitlines(),
        "removed_by_rule": _removed_by_rule(combination),
    }
    logger.info("splits: %s", summary["sizes"])
    return Splits(
        train=views["train"],
        validation=views["validation"],
        test=views["test"],
        class_weight=class_weight,
        summary=summary,
        test_sets=test_sets,
    )


def _removed_by_rule(combination) -> dict:
    removed = getattr(combination.report, "removed", None)
    if removed is None or len(removed) == 0 or "rule" not in getattr(removed, "columns", []):
        return {}
    return {str(k): int(v) for k, v in removed["rule"].value_counts().items()}
