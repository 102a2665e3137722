"""Public entry points: `load_combination` and `load_split`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from tfmelanoma.datasets import combination, sampling
from tfmelanoma.datasets import index as index_lib
from tfmelanoma.datasets.combination import MergeOptions, MergeReport
from tfmelanoma.datasets.materialise import SplitView


@dataclass
class Combination:
    """Train / validation / test splits of a leak-free combination.

    Attributes:
        train_names: training datasets, in priority order.
        test_name: test dataset (None: no test split).
        train, validation, test: `SplitView`s (``.frame`` index tables, ``.as_tf_dataset()``,
            ``.as_data_source()``).
        report: `MergeReport` (what was removed, by which rule, and why).
        index: every index row read, with its official ``role`` (for reports).
        options: the `MergeOptions` used.
    """

    train_names: tuple[str, ...]
    test_name: str | None
    train: SplitView
    validation: SplitView
    test: SplitView
    report: MergeReport
    index: pd.DataFrame
    options: MergeOptions

    def split(self, name: str) -> SplitView:
        """The `SplitView` called "train", "validation" or "test"."""
        if name not in combination.SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {combination.SPLITS}")
        return getattr(self, name)

    def as_tf_dataset(self, split: str, **kwargs):
        """`SplitView.as_tf_dataset` of one split (kwargs: oversample, shuffle, seed)."""
        return self.split(split).as_tf_dataset(**kwargs)

    def as_data_source(self, split: str, **kwargs):
        """`SplitView.as_data_source` of one split (kwargs: oversample, seed)."""
        return self.split(split).as_data_source(**kwargs)

    def class_weights(
        self, method: str = "inverse", *, beta: float = 0.999, column: str = "label"
    ) -> dict[int, float]:
        """Class weights of the training split (`sampling.class_weights`).

        Args:
            method: "inverse" or "effective".
            beta: effective-number parameter.
            column: "label" (binary) or "harmonised_diagnosis" (nine classes).
        """
        from tfmelanoma import labels

        k = len(labels.BINARY_CLASSES if column == "label" else labels.HARMONISED_CLASSES)
        values = self.train.frame[column].to_numpy()
        return sampling.class_weights(values, method=method, beta=beta, num_classes=k)

    def summary(self) -> str:
        """One line per split: example count and melanoma share."""
        lines = [f"train={list(self.train_names)} test={self.test_name}"]
        for name in combination.SPLITS:
            view = self.split(name)
            mel = view.labels.mean() if len(view) else float("nan")
            lines.append(f"  {name:<10} {len(view):>7} examples, melanoma {mel:.1%}")
        lines.append(f"  removed    {len(self.report.removed):>7} (see report)")
        return "\n".join(lines)


def _parse_names(names: str | Sequence[str] | None) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        names = names.split(",")
    return [n.strip() for n in names if n and n.strip()]


def read_indices(
    names: Sequence[str], data_dir: str | None, test: str | None
) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """Index rows and split roles of the datasets a combination needs.

    Training datasets contribute their train/validation splits; the test dataset its test split,
    or every split when it has no test split (the merge holds part of it out).
    """
    frames, roles = [], {}
    for name in dict.fromkeys([*names, *([test] if test else [])]):
        builder = index_lib.get_builder(name, data_dir)
        roles[name] = index_lib.split_roles(builder)
        wanted = set()
        if name in names:
            wanted |= {s for s, r in roles[name].items() if r in ("train", "validation")}
        if name == test:
            official = {s for s, r in roles[name].items() if r == "test"}
            wanted |= official or set(roles[name])
        if wanted:
            ordered = [s for s in roles[name] if s in wanted]
            frames.append(index_lib.read_index(name, data_dir, ordered))
    if not frames:
        raise ValueError("no datasets given: pass train=[...] and/or test=...")
    return pd.concat(frames, ignore_index=True), roles


def load_combination(
    train: str | Sequence[str],
    test: str | None = None,
    *,
    data_dir: str | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    rules: Sequence[str] = combination.dedup.RULES,
    max_distance: int = combination.dedup.DEFAULT_MAX_DISTANCE,
    dedup_train: bool = True,
) -> Combination:
    """Builds a leak-free combination from prepared TFDS datasets.

    Args:
        train: training dataset names ("isic2016,isic2017" or a list), in priority order.
        test: test dataset name; its official test split, else a held-out part of it.
        data_dir: TFDS data directory where the datasets are prepared.
        val_fraction: validation share for datasets without an official validation split.
        test_fraction: held-out share when the test dataset has no official test split.
        seed: seed of the grouped splits.
        rules: match rules for removals (see `tfmelanoma.datasets.dedup.RULES`).
        max_distance: pHash Hamming threshold.
        dedup_train: drop repeated images inside training.

    Returns:
        A `Combination`.

    Raises:
        DatasetNotPreparedError: a dataset is unknown or not prepared in `data_dir`.
    """
    names = _parse_names(train)
    options = MergeOptions(
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        rules=tuple(rules),
        max_distance=max_distance,
        dedup_train=dedup_train,
    )
    index, roles = read_indices(names, data_dir, test)
    frames, report = combination.plan(index, roles, names, test, options)
    views = {k: SplitView(v, data_dir, k) for k, v in frames.items()}
    indexed = combination._role_frame(index, roles)
    return Combination(tuple(names), test, **views, report=report, index=indexed, options=options)


def load_split(
    name: str,
    split: str = "test",
    *,
    data_dir: str | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> SplitView:
    """One split of one dataset, for evaluation.

    ``split="test"`` of a dataset without an official test split returns the same held-out test
    set that `load_combination(..., test=name, seed=seed, test_fraction=test_fraction)` uses.

    Args:
        name: dataset name.
        split: "train", "validation", "test" or any split name of the builder.
        data_dir: TFDS data directory.
        seed: seed of the held-out test split.
        test_fraction: share of the held-out test split.
    """
    if split == "test":
        index, roles = read_indices([], data_dir, name)
        options = MergeOptions(test_fraction=test_fraction, seed=seed)
        frames, _ = combination.plan(index, roles, [], name, options)
        return SplitView(frames["test"], data_dir, f"{name}:test")
    frame = index_lib.read_index(name, data_dir, [split])
    return SplitView(frame, data_dir, f"{name}:{split}")
