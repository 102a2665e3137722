"""Grouped, stratified, seeded splits of an index table.

Rows are grouped so that a patient (else a lesion, else a single image) never straddles two
splits; rows that are the same image by content (ISIC id, pixels, pHash) are put in the same group
too, so a within-dataset duplicate cannot leak across a split we make. The split itself is
scikit-learn's `StratifiedGroupKFold` (first fold held out), stratified by dataset x label so each
dataset keeps its class balance.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedGroupKFold

from tfmelanoma.datasets import dedup


def leakage_groups(
    frame: pd.DataFrame, *, max_distance: int = dedup.DEFAULT_MAX_DISTANCE
) -> np.ndarray:
    """Connected components of rows linked by patient, lesion or duplicate content.

    Args:
        frame: index frame (see `tfmelanoma.datasets.index.INDEX_COLUMNS`).
        max_distance: pHash threshold for the content link.

    Returns:
        int array, one group id per row (in row order).
    """
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = dedup.match_pairs(frame, None, rules=dedup.CONTENT_RULES, max_distance=max_distance)
    rows = [pairs["left"].to_numpy(dtype=np.int64)]
    cols = [pairs["right"].to_numpy(dtype=np.int64)]
    # Patient and lesion links as stars (every row to the first row of its key): the same
    # components as all pairs, in O(n) even for a patient with thousands of images.
    for rule in ("patient", "lesion"):
        keys = dedup.rule_keys(frame, rule).to_numpy(dtype=object)
        codes, _ = pd.factorize(keys)
        has = keys.astype(bool)
        first = pd.Series(np.arange(n))[has].groupby(codes[has]).transform("first").to_numpy()
        rows.append(np.flatnonzero(has))
        cols.append(first.astype(np.int64))
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def grouped_split(
    frame: pd.DataFrame,
    fraction: float,
    *,
    seed: int = 0,
    groups: np.ndarray | None = None,
    stratify: str = "label",
    max_distance: int = dedup.DEFAULT_MAX_DISTANCE,
) -> np.ndarray:
    """Chooses about `fraction` of the rows, whole groups at a time, stratified.

    The held-out part is the first fold of ``StratifiedGroupKFold(n_splits=round(1 / fraction))``,
    so the realised fraction is 1/n_splits (0.2 -> 5 folds, 0.25 -> 4, 0.15 -> 7 = 14.3 %).

    Args:
        frame: index frame with ``dataset`` and the `stratify` column.
        fraction: share to hold out, in (0, 0.5].
        seed: shuffling seed; the same seed and rows give the same split.
        groups: group id per row; None computes `leakage_groups`.
        stratify: column to stratify by (together with ``dataset``).
        max_distance: pHash threshold used when `groups` is None.

    Returns:
        Boolean mask, True for held-out rows.

    Raises:
        ValueError: `fraction` out of range or fewer groups than folds, naming the counts.
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(f"split fraction must be in (0, 0.5], got {fraction}")
    n_splits = max(2, round(1 / fraction))
    if groups is None:
        groups = leakage_groups(frame, max_distance=max_distance)
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        datasets = sorted(frame["dataset"].unique()) if len(frame) else []
        raise ValueError(
            f"cannot hold out {fraction:.0%} of {len(frame)} rows of {datasets}: only {n_groups} "
            f"patient/lesion/image group(s), need at least {n_splits}"
        )
    # Sort rows by a stable key first: the split then depends on the rows, not on their order.
    order = np.lexsort(
        (
            frame["position"].to_numpy(),
            frame["split"].astype(str).to_numpy(),
            frame["image_id"].astype(str).to_numpy(),
            frame["dataset"].astype(str).to_numpy(),
        )
    )
    strata = (frame["dataset"].astype(str) + "|" + frame[stratify].astype(str)).to_numpy()
    y = pd.factorize(strata[order])[0]
    # Component labels are arbitrary; renumber them in sorted-row order.
    g = pd.factorize(np.asarray(groups)[order])[0]
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    # StratifiedGroupKFold warns when a stratum has fewer members than folds; tiny strata are
    # expected (e.g. a 3-image class) and still get whole-group assignment.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, held_sorted = next(splitter.split(np.zeros(len(y)), y, g))
    mask = np.zeros(len(frame), dtype=bool)
    mask[order[held_sorted]] = True
    return mask
