"""Leak-free combinations: training datasets + test sets -> train / validation / test.

The merge runs on index frames (`tfmelanoma.datasets.index`), in this order:

1. **Test sets.** One or more (`parse_tests`: "ph2,derm7pt", "isic2017:test"). A test set that
   names a split is that split ("all": every split). A dataset that is not trained on is an
   external test set and is used whole. A training dataset's test set is its official ``test``
   split; one without (ISIC Archive, the embedded sample, ISIC 2019/2020 training data, PH2, ...)
   gets a held-out test split of `test_fraction`, grouped by patient (else lesion, else image)
   and by duplicate content, stratified by label, seeded. The same seed and fraction always give
   the same test set, in every combination and in `load_split`. Test rows carry ``test_set``.
2. **Pool.** The ``train`` and ``validation`` splits of the training datasets. Official test splits
   are never trained on, whichever dataset they belong to. Rows named in `exclude` (image ids,
   e.g. the web demo's gallery), and every pool row matching one of them by the rules below, are
   removed (stage ``excluded``): never trained on nor validated on, wherever they appear.
3. **Test priority.** Every pool row that matches a row of any test set (same ISIC id, same pixels, pHash
   within `max_distance`, same lesion, same patient) is removed.
4. **Validation.** Official validation splits are kept, and remaining rows that match one of
   their rows are removed. Rows of datasets without an official validation split are split
   `val_fraction` : rest, grouped and stratified by dataset x label (one joint split, so a
   duplicate or patient shared by two such datasets lands on one side).
5. **Train vs validation.** Training rows that still match a validation row (links between a
   dataset with an official validation split and a made one) are removed from training
   (validation, like test, keeps its rows).
6. **Training duplicates.** Of several training rows showing the same image (ISIC id, pixels,
   pHash) only the first is kept (order: `train` list order, then split, then position).

Every removal is recorded with its stage, rule and the row it matched (`Combination.report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tfmelanoma.datasets import dedup, splits
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)

STAGES = ("excluded", "test_overlap", "validation_overlap", "train_duplicate")
SPLITS = ("train", "validation", "test")
ALL_SPLITS = "all"


@dataclass(frozen=True)
class TestSet:
    """One test set of a combination: a dataset, and the split named after ":" (or None).

    Attributes:
        dataset: TFDS name, e.g. "ph2" or "isic2017/classification_512".
        split: a split of the dataset, "all", or None (see the module docstring, step 1).
    """

    __test__ = False  # not a pytest class

    dataset: str
    split: str | None = None

    @property
    def name(self) -> str:
        """The spec as written: "dataset" or "dataset:split"."""
        return self.dataset if self.split is None else f"{self.dataset}:{self.split}"


def parse_tests(test: str | TestSet | Sequence[str | TestSet] | None) -> list[TestSet]:
    """Test sets from "ph2,derm7pt:test" or a list of names / `TestSet`s; [] for None or "".

    A ":" suffix names a split unless it is a TFDS version ("isic2017:1.0.0" stays one name).

    Raises:
        ValueError: a test set given twice.
    """
    if test is None:
        return []
    items = (
        test.split(",") if isinstance(test, str) else [test] if isinstance(test, TestSet) else test
    )
    out: list[TestSet] = []
    for item in items:
        if isinstance(item, TestSet):
            spec = item
        else:
            item = item.strip()
            if not item:
                continue
            name, sep, split = item.rpartition(":")
            if not sep or not split or split[0].isdigit():  # no suffix, or a TFDS version
                spec = TestSet(item)
            else:
                spec = TestSet(name, split)
        if spec in out:
            raise ValueError(f"test set {spec.name!r} is given twice")
        out.append(spec)
    return out


@dataclass(frozen=True)
class MergeOptions:
    """Knobs of the merge step.

    Attributes:
        val_fraction: validation share for datasets without an official validation split.
        test_fraction: held-out test share for a test dataset without an official test split.
        seed: seed of both grouped splits.
        rules: match rules for removal against test / validation (subset of `dedup.RULES`).
        max_distance: pHash Hamming threshold.
        dedup_train: drop repeated images inside the training split.
        exclude: image ids (ISIC ids match whatever the file name around them) that no
            training or validation row may show.
    """

    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    rules: tuple[str, ...] = dedup.RULES
    max_distance: int = dedup.DEFAULT_MAX_DISTANCE
    dedup_train: bool = True
    exclude: tuple[str, ...] = ()


@dataclass
class MergeReport:
    """What the merge did.

    Attributes:
        removed: one row per removed example: its index columns plus ``stage``, ``rule``,
            ``matched_dataset``, ``matched_split``, ``matched_image_id``.
        overlaps: per stage x rule: ``pairs`` found, ``rows`` matched (distinct, by that rule
            alone) and ``removed`` (rows attributed to that rule, first matching rule wins).
        test_source: of the first test set: "official", "held_out", "whole" or "split".
        notes: human-readable lines (what was held out, which splits were made).
        test_sources: test set name -> its source (as `test_source`), in order.
        rejected: pHash candidates that the pixel check (`verify.PixelCheck`) found to be
            different images, so nothing was removed for them; empty without the check.
    """

    removed: pd.DataFrame
    overlaps: pd.DataFrame
    test_source: str = "official"
    notes: list[str] = field(default_factory=list)
    test_sources: dict[str, str] = field(default_factory=dict)
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)

    def removed_count(self, stage: str | None = None, rule: str | None = None) -> int:
        sel = self.removed
        if stage is not None:
            sel = sel[sel["stage"] == stage]
        if rule is not None:
            sel = sel[sel["rule"] == rule]
        return len(sel)


def _role_frame(frame: pd.DataFrame, roles: dict[str, dict[str, str]]) -> pd.DataFrame:
    role = [roles[d][s] for d, s in zip(frame["dataset"], frame["split"], strict=True)]
    return frame.assign(role=role)


def _match_and_remove(
    left: pd.DataFrame, right: pd.DataFrame, stage: str, rules, max_distance: int, confirm=None
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Rows of `left` matching `right`: (keep mask, removed records, overlap counts)."""
    pairs = dedup.match_pairs(left, right, rules=rules, max_distance=max_distance)
    if confirm is not None:
        pairs = confirm(left, right, pairs, stage)
    return _apply_pairs(left, right, pairs, stage, rules)


def _apply_pairs(left, right, pairs, stage, rules):
    first = dedup.attribute(pairs, "left")
    keep = np.ones(len(left), dtype=bool)
    keep[first.index.to_numpy(dtype=np.int64)] = False
    overlap_rows = []
    for rule in rules:
        sel = pairs[pairs["rule"] == rule]
        overlap_rows.append(
            {
                "stage": stage,
                "rule": rule,
                "pairs": len(sel),
                "rows": sel["left"].nunique(),
                "removed": int((first == rule).sum()),
            }
        )
    removed = left.iloc[first.index.to_numpy(dtype=np.int64)].copy()
    removed["stage"] = stage
    removed["rule"] = first.to_numpy()
    # The matched row: first pair of the attributed rule for each removed row.
    chosen = (
        pairs.merge(first.rename("rule").rename_axis("left").reset_index(), on=["left", "rule"])
        .drop_duplicates("left")
        .set_index("left")
        .reindex(first.index)
    )
    matched = right.iloc[chosen["right"].to_numpy(dtype=np.int64)]
    removed["matched_dataset"] = matched["dataset"].to_numpy()
    removed["matched_split"] = matched["split"].to_numpy()
    removed["matched_image_id"] = matched["image_id"].to_numpy()
    removed["matched_position"] = matched["position"].to_numpy()
    if "test_set" in matched.columns:
        removed["matched_test_set"] = matched["test_set"].to_numpy()
    removed["distance"] = chosen["distance"].fillna(-1).to_numpy(dtype=np.int64)
    if "texture" in chosen.columns:  # scores of the pixel check (`verify`), where it ran
        removed["texture"] = chosen["texture"].to_numpy(dtype=float)
        removed["inliers"] = chosen["inliers"].fillna(-1).to_numpy(dtype=np.int64)
    return keep, removed, pd.DataFrame(overlap_rows)


def plan(
    index: pd.DataFrame,
    roles: dict[str, dict[str, str]],
    train: Sequence[str],
    test: str | Sequence[str | TestSet] | None,
    options: MergeOptions = MergeOptions(),
    confirm=None,
) -> tuple[dict[str, pd.DataFrame], MergeReport]:
    """The merge on index frames alone (no TFDS access): see the module docstring.

    Args:
        index: index rows of every split involved (`index.INDEX_COLUMNS`).
        roles: {dataset: {split name: role}} with roles "train" / "validation" / "test".
        train: training dataset names, in priority order.
        test: test sets (`parse_tests`: "ph2,derm7pt:test", a list), or None for no test split.
        options: `MergeOptions`.
        confirm: checks content matches on the pixels before they remove anything:
            `confirm(left, right, pairs, stage) -> pairs` (`tfmelanoma.datasets.verify.
            PixelCheck`); None trusts the hashes (index frames only, no images needed).

    Returns:
        ({"train": frame, "validation": frame, "test": frame}, MergeReport). Frames carry the
        index columns plus ``role`` (the row's official role); the test frame also ``test_set``.

    Raises:
        ValueError: a named split that the dataset does not have.
    """
    o = options
    frame = _role_frame(index, roles).reset_index(drop=True)
    notes: list[str] = []
    removed_parts, overlap_parts = [], []

    # 1. Test sets.
    held_out = np.zeros(len(frame), dtype=bool)
    test_set = np.full(len(frame), "", dtype=object)
    sources: dict[str, str] = {}
    for spec in parse_tests(test):
        mask, sources[spec.name] = _test_rows(frame, spec, train, o, notes)
        test_set[mask & ~held_out] = spec.name
        held_out |= mask
    test_rows = frame.assign(test_set=test_set)[held_out]
    test_source = next(iter(sources.values()), "official")

    # 2. Pool: train/validation splits of the training datasets.
    in_train = frame["dataset"].isin(list(train)) & frame["role"].isin(["train", "validation"])
    pool = frame[in_train & ~held_out].reset_index(drop=True)
    if o.exclude and len(pool):
        excluded = _excluded_rows(frame, o.exclude)
        keep, removed, overlaps = _match_and_remove(
            pool, excluded, "excluded", o.rules, o.max_distance, confirm
        )
        pool = pool[keep].reset_index(drop=True)
        removed_parts.append(removed)
        overlap_parts.append(overlaps)

    # 3. Test priority.
    if len(test_rows) and len(pool):
        keep, removed, overlaps = _match_and_remove(
            pool,
            test_rows.reset_index(drop=True),
            "test_overlap",
            o.rules,
            o.max_distance,
            confirm,
        )
        pool = pool[keep].reset_index(drop=True)
        removed_parts.append(removed)
        overlap_parts.append(overlaps)

    # 4. Validation: official validation splits are kept, and any candidate matching one of their
    # rows is removed before the remaining datasets are split (so it cannot land on either side).
    official_val = pool["role"] == "validation"
    if official_val.any() and (~official_val).any():
        rest = pool[~official_val].reset_index(drop=True)
        keep, removed, overlaps = _match_and_remove(
            rest, pool[official_val].reset_index(drop=True), "validation_overlap", o.rules,
            o.max_distance, confirm,
        )  # fmt: skip
        pool = pd.concat([pool[official_val], rest[keep]], ignore_index=True)
        removed_parts.append(removed)
        overlap_parts.append(overlaps)
    has_val = set(pool.loc[pool["role"] == "validation", "dataset"])
    val_mask = (pool["role"] == "validation").to_numpy(copy=True).copy()
    need = ~pool["dataset"].isin(has_val).to_numpy()
    if need.any():
        _make_validation(pool, need, val_mask, o, notes)
    validation = pool[val_mask].reset_index(drop=True)
    training = pool[~val_mask].reset_index(drop=True)

    # 5. Train vs the made validation rows (cross-dataset links): validation keeps its rows.
    if len(training) and len(validation):
        keep, removed, overlaps = _match_and_remove(
            training, validation, "validation_overlap", o.rules, o.max_distance, confirm
        )
        training = training[keep].reset_index(drop=True)
        removed_parts.append(removed)
        overlap_parts.append(overlaps)

    # 6. Repeated images inside training: keep the first of each.
    if o.dedup_train and len(training):
        priority = {name: i for i, name in enumerate(train)}
        training = (
            training.assign(_p=training["dataset"].map(priority))
            .sort_values(["_p", "role", "position"], kind="stable")
            .drop(columns="_p")
            .reset_index(drop=True)
        )
        rules = [r for r in o.rules if r in dedup.CONTENT_RULES]
        pairs = dedup.match_pairs(training, None, rules=rules, max_distance=o.max_distance)
        if confirm is not None:
            pairs = confirm(training, training, pairs, "train_duplicate")
        # Pairs are (earlier, later). Greedy in row order: a row goes when an earlier kept row
        # matches it, so no two kept rows match. In a chain a~b~c with a !~ c, b goes and c stays.
        drop = _later_duplicates(pairs, len(training))
        dup_pairs = pairs[pairs["right"].isin(drop) & ~pairs["left"].isin(drop)].rename(
            columns={"left": "right", "right": "left"}
        )
        keep, removed, overlaps = _apply_pairs(
            training, training, dup_pairs, "train_duplicate", rules
        )
        training = training[keep].reset_index(drop=True)
        removed_parts.append(removed)
        overlap_parts.append(overlaps)

    out = {"train": training, "validation": validation, "test": test_rows.reset_index(drop=True)}
    removed = (
        pd.concat(removed_parts, ignore_index=True)
        if removed_parts
        else pd.DataFrame(columns=[*frame.columns, "stage", "rule"])
    )
    overlaps = (
        pd.concat(overlap_parts, ignore_index=True)
        .groupby(["stage", "rule"], sort=False, as_index=False)
        .sum()
        if overlap_parts
        else pd.DataFrame(columns=["stage", "rule", "pairs", "rows", "removed"])
    )
    rejected = confirm.rejected() if hasattr(confirm, "rejected") else pd.DataFrame()
    return out, MergeReport(removed, overlaps, test_source, notes, sources, rejected)


def _excluded_rows(frame: pd.DataFrame, exclude: Sequence[str]) -> pd.DataFrame:
    """The rows whose image id is one of `exclude` (ISIC ids compared normalised).

    Raises:
        ValueError: an id that no dataset of the combination has (a typo must not pass).
    """
    wanted = {dedup.normalise_isic_id(i) or i for i in exclude}
    ids = frame["image_id"].astype(str)
    keys = ids.map(lambda i: dedup.normalise_isic_id(i) or i)
    rows = frame[keys.isin(wanted)].reset_index(drop=True)
    missing = sorted(wanted - set(keys))
    if missing:
        raise ValueError(
            f"data.exclude: {missing} are not image ids of any dataset in this combination"
        )
    return rows


def _test_rows(
    frame: pd.DataFrame, spec: TestSet, train: Sequence[str], o: MergeOptions, notes: list[str]
) -> tuple[np.ndarray, str]:
    """(row mask, source) of one test set; see the module docstring, step 1."""
    own = (frame["dataset"] == spec.dataset).to_numpy()
    if spec.split not in (None, ALL_SPLITS):
        present = sorted(set(frame.loc[own, "split"]))
        if spec.split not in present:
            raise ValueError(
                f"test set {spec.name!r}: {spec.dataset} has no split {spec.split!r}; "
                f"its splits: {present} (or {ALL_SPLITS!r})"
            )
        return own & (frame["split"] == spec.split).to_numpy(), "split"
    if spec.split == ALL_SPLITS or spec.dataset not in train:
        notes.append(f"{spec.name}: used whole as a test set ({int(own.sum())} examples)")
        return own, "whole"
    official = own & (frame["role"] == "test").to_numpy()
    if official.any():
        return official, "official"
    candidates = frame[own]
    mask = splits.grouped_split(
        candidates, o.test_fraction, seed=o.seed, max_distance=o.max_distance
    )
    held = np.zeros(len(frame), dtype=bool)
    held[np.flatnonzero(own)[mask]] = True
    notes.append(
        f"{spec.dataset} has no official test split: held out {mask.sum()} of {len(candidates)} "
        f"examples (test_fraction={o.test_fraction}, seed={o.seed}, grouped by patient/"
        "lesion/duplicate, stratified by label)"
    )
    return held, "held_out"


def _later_duplicates(pairs: pd.DataFrame, n: int) -> set[int]:
    """Rows to drop so that no kept row duplicates an earlier kept row (greedy, in row order)."""
    if pairs.empty:
        return set()
    by_right: dict[int, list[int]] = {}
    for left, right in zip(pairs["left"], pairs["right"], strict=True):
        by_right.setdefault(int(right), []).append(int(left))
    dropped: set[int] = set()
    for row in range(n):
        if row in by_right and any(left not in dropped for left in by_right[row]):
            dropped.add(row)
    return dropped


def _make_validation(pool, need, val_mask, o: MergeOptions, notes: list[str]) -> None:
    """Marks a grouped, stratified `val_fraction` of the `need` rows as validation (in place).

    Rows linked (same image, lesion or patient) to a training image of a dataset with an official
    validation split stay in training with their whole group: sending them to validation would
    only force step 5 to delete that other dataset's training image.
    """
    rows = np.flatnonzero(need)
    fixed = np.flatnonzero(~need & ~val_mask)
    groups = splits.leakage_groups(pool.iloc[rows], max_distance=o.max_distance)
    free = np.ones(len(rows), dtype=bool)
    if len(fixed):
        links = dedup.match_pairs(
            pool.iloc[rows], pool.iloc[fixed], rules=o.rules, max_distance=o.max_distance
        )
        linked_groups = np.unique(groups[links["left"].to_numpy(dtype=np.int64)])
        free = ~np.isin(groups, linked_groups)
    names = sorted(pool.iloc[rows]["dataset"].unique())
    try:
        made = splits.grouped_split(
            pool.iloc[rows[free]], o.val_fraction, seed=o.seed, groups=groups[free]
        )
    except ValueError as e:
        if free.all():  # the datasets themselves are too small to split
            raise
        notes.append(f"no validation made for {names}: {e} (after keeping linked rows in train)")
        return
    val_mask[rows[free][made]] = True
    note = (
        f"validation made for {names}: {made.sum()} of {free.sum()} examples (val_fraction="
        f"{o.val_fraction}, seed={o.seed}, grouped, stratified by dataset x label)"
    )
    if (~free).any():
        note += (
            f"; {(~free).sum()} more stay in training because they match training images of "
            "datasets with an official validation split"
        )
    notes.append(note)
