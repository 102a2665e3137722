"""Public entry points: `load_combination` and `load_split`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from tfmelanoma.datasets import combination, sampling
from tfmelanoma.datasets import index as index_lib
from tfmelanoma.datasets.access import get_builder
from tfmelanoma.datasets.combination import MergeOptions, MergeReport
from tfmelanoma.datasets.materialise import SplitView


@dataclass
class Combination:
    """Train / validation / test splits of a leak-free combination.

    Attributes:
        train_names: training datasets, in priority order.
        test_name: the test sets as given, comma-joined ("ph2,derm7pt:test"; None: no test split).
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

    @property
    def test_sets(self) -> dict[str, SplitView]:
        """Test set name -> its rows (a view of `test` each), in the order given."""
        frame = self.test.frame
        names = combination.parse_tests(self.test_name)
        return {
            t.name: SplitView(
                frame[frame["test_set"] == t.name].reset_index(drop=True),
                self.test.data_dir,
                f"test:{t.name}",
            )
            for t in names
        }

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
    names: Sequence[str], data_dir: str | None, test
) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """Index rows and split roles of the datasets a combination needs.

    Training datasets contribute their train/validation splits; each test set (`parse_tests`)
    its named split, or every split (a training dataset's official test split is among them;
    the merge picks, or holds part out).
    """
    tests = combination.parse_tests(test)
    frames, roles = [], {}
    for name in dict.fromkeys([*names, *(t.dataset for t in tests)]):
        builder = get_builder(name, data_dir, prepare=False)
        roles[name] = index_lib.split_roles(builder)
        wanted = set()
        if name in names:
            wanted |= {s for s, r in roles[name].items() if r in ("train", "validation")}
        for t in (t for t in tests if t.dataset == name):
            if t.split in roles[name]:
                wanted.add(t.split)
            elif t.split is None and name in names:
                official = {s for s, r in roles[name].items() if r == "test"}
                wanted |= official or set(roles[name])
            else:  # whole, "all", or an unknown split (the merge names the valid ones)
                wanted |= set(roles[name])
        if wanted:
            ordered = [s for s in roles[name] if s in wanted]
            frames.append(index_lib.read_index(name, data_dir, ordered))
    if not frames:
        raise ValueError("no datasets given: pass train=[...] and/or test=...")
    return pd.concat(frames, ignore_index=True), roles


def load_combination(
    train: str | Sequence[str],
    test: str | Sequence[str] | None = None,
    *,
    data_dir: str | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    rules: Sequence[str] = combination.dedup.RULES,
    max_distance: int = combination.dedup.DEFAULT_MAX_DISTANCE,
    dedup_train: bool = True,
    verify: bool = True,
    exclude: Sequence[str] = (),
) -> Combination:
    """Builds a leak-free combination from prepared TFDS datasets.

    Args:
        train: training dataset names ("isic2016,isic2017" or a list), in priority order.
        test: test sets, "ph2,derm7pt:test" or a list: a dataset not trained on is used whole,
            "name:split" is that split, a training dataset gives its official test split, else
            a held-out part (`tfmelanoma.datasets.combination`, step 1).
        data_dir: TFDS data directory where the datasets are prepared.
        val_fraction: validation share for datasets without an official validation split.
        test_fraction: held-out share when the test dataset has no official test split.
        seed: seed of the grouped splits.
        rules: match rules for removals (see `tfmelanoma.datasets.dedup.RULES`).
        max_distance: pHash Hamming threshold.
        dedup_train: drop repeated images inside training.
        verify: confirm every pHash match on the pixels before it removes anything
            (`tfmelanoma.datasets.verify`; reads the candidate images); False trusts the hashes.
        exclude: image ids never to train or validate on, nor any image matching them (e.g.
            the web demo's gallery); each must be an image of a dataset named here.

    Returns:
        A `Combination`.

    Raises:
        tfmelanoma.errors.DatasetError: a dataset is unknown or not prepared in `data_dir`
            (prepare it with `get_builder`).
    """
    names = _parse_names(train)
    options = MergeOptions(
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        rules=tuple(rules),
        max_distance=max_distance,
        dedup_train=dedup_train,
        exclude=tuple(exclude),
    )
    tests = combination.parse_tests(test)
    index, roles = read_indices(names, data_dir, tests)
    from tfmelanoma.datasets.verify import PixelCheck

    check = PixelCheck(data_dir) if verify else None
    frames, report = combination.plan(index, roles, names, tests, options, confirm=check)
    views = {k: SplitView(v, data_dir, k) for k, v in frames.items()}
    indexed = combination._role_frame(index, roles)
    test_name = ",".join(t.name for t in tests) or None
    return Combination(
        tuple(names), test_name, **views, report=report, index=indexed, options=options
    )


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
    set that `load_combination(train=[name, ...], test=name, seed=seed,
    test_fraction=test_fraction)` uses (the test set of a dataset that is also trained on).

    Args:
        name: dataset name.
        split: "train", "validation", "test" or any split name of the builder.
        data_dir: TFDS data directory.
        seed: seed of the held-out test split.
        test_fraction: share of the held-out test split.
    """
    if split == "test":
        # As a training dataset's test set: official, else held out (an external test set
        # would be the whole dataset).
        index, roles = read_indices([name], data_dir, name)
        options = MergeOptions(test_fraction=test_fraction, seed=seed)
        frames, _ = combination.plan(index, roles, [name], name, options)
        return SplitView(frames["test"].drop(columns="test_set"), data_dir, f"{name}:test")
    frame = index_lib.read_index(name, data_dir, [split])
    return SplitView(frame, data_dir, f"{name}:{split}")
