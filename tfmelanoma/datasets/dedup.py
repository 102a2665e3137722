"""Duplicate detection between image index tables: ISIC id, exact pixels, perceptual hash.

Rules, in the order a removal is attributed to them (a pair may match several):

- ``isic_id``: the same ISIC image id (``ISIC_0000123``) found in the image id of both rows, whatever
  the file name around it (``ISIC_0000123_downsampled.jpg``, ``isic_0000123``).
- ``sha256``: identical decoded pixels (the schema's ``sha256`` hashes pixels and shape, so a PNG and
  a lossless re-save of the same image match).
- ``phash``: 64-bit DCT perceptual hashes within ``max_distance`` bits (Hamming): catches resized,
  re-encoded and mildly re-compressed copies.
- ``lesion`` / ``patient``: the same lesion or patient id. Not duplicates, but the same person or
  lesion on both sides of a split is leakage all the same.

Perceptual-hash matching uses multi-index hashing (Norouzi et al., CVPR 2012): each 64-bit hash is cut
into ``m`` bands; by the pigeonhole principle two hashes within distance ``d`` agree within
``d // m`` bits on at least one band, so only rows sharing a band value up to that many flipped bits
are compared. The probes are equality joins, so the cost grows with the number of real candidate
pairs, not with N^2. Written here because no maintained library offers sub-quadratic Hamming joins
on 64-bit hashes with NumPy only (imagehash compares one pair at a time; faiss/annoy are heavy
binary-wheel dependencies).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

# The names and defaults live in a NumPy-free module, so `--help` reads them without pandas.
from tfmelanoma.datasets.rules import CONTENT_RULES, DEFAULT_MAX_DISTANCE, RULES  # noqa: F401

_ISIC_ID = re.compile(r"isic[_-]?(\d{7})", re.IGNORECASE)
_ISIC_PATIENT = re.compile(r"^IP_\d+$")


def normalise_isic_id(image_id: str) -> str:
    """Returns ``ISIC_0000123`` for any id or file name that contains an ISIC id, else "".

    Args:
        image_id: an image id or file name, e.g. ``"ISIC_0000123_downsampled.jpg"``.
    """
    m = _ISIC_ID.search(image_id or "")
    return f"ISIC_{m.group(1)}" if m else ""


def group_key(dataset: str, kind: str, value: str) -> str:
    """A patient/lesion key that is global where the id is (ISIC ``IP_...``), per dataset otherwise.

    Patient ids such as ``PAT_12`` (PAD-UFES-20) or case numbers (derm7pt) only mean something inside
    their dataset, whereas ISIC patient ids are shared by ISIC 2019/2020 and the Archive.

    Returns:
        "" when `value` is empty, else a namespaced key.
    """
    if not value:
        return ""
    if kind == "patient" and _ISIC_PATIENT.match(value):
        return f"patient:{value}"
    return f"{kind}:{dataset}:{value}"


def phash_to_int(values: Sequence[str] | pd.Series) -> np.ndarray:
    """16-hex-digit perceptual hashes to uint64; "" or invalid values raise naming the value."""
    out = np.empty(len(values), dtype=np.uint64)
    for i, v in enumerate(values):
        try:
            out[i] = np.uint64(int(v, 16))
        except (TypeError, ValueError):
            raise ValueError(f"phash {v!r} at row {i} is not a 16-digit hex string") from None
    return out


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between two uint64 arrays (element-wise)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def _band_probes(bits: int, radius: int) -> list[int]:
    """All masks of `bits` bits with at most `radius` bits set (including 0)."""
    masks = [0]
    for r in range(1, radius + 1):
        for combo in itertools.combinations(range(bits), r):
            masks.append(sum(1 << b for b in combo))
    return masks


def _choose_bands(max_distance: int) -> int:
    # 4 bands of 16 bits keep buckets sparse (65,536 values per band); the probe count per band is
    # sum_{r<=d//4} C(16, r): 1 for d<=3, 17 for d<=7, 137 for d<=11. Beyond that 8 bands of 8 bits
    # with fewer flips are cheaper.
    return 4 if max_distance <= 11 else 8


def phash_pairs(
    left: np.ndarray,
    right: np.ndarray | None = None,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> pd.DataFrame:
    """All pairs of hashes within `max_distance` bits, by multi-index hashing.

    Args:
        left: uint64 hashes.
        right: uint64 hashes to match against; None matches `left` against itself (i < j only).
        max_distance: largest Hamming distance that counts as a match (0..63).

    Returns:
        DataFrame with columns ``left``, ``right`` (row positions) and ``distance``, sorted.
    """
    if not 0 <= max_distance < 64:
        raise ValueError(f"max_distance must be in [0, 63], got {max_distance}")
    self_join = right is None
    right = left if right is None else right
    left = np.asarray(left, dtype=np.uint64)
    right = np.asarray(right, dtype=np.uint64)
    empty = pd.DataFrame({"left": [], "right": [], "distance": []}, dtype=np.int64)
    if len(left) == 0 or len(right) == 0:
        return empty
    m = _choose_bands(max_distance)
    bits = 64 // m
    radius = max_distance // m
    band_mask = np.uint64((1 << bits) - 1)
    right_pos = np.arange(len(right), dtype=np.int64)
    found = []
    for band in range(m):
        shift = np.uint64(band * bits)
        lkeys = ((left >> shift) & band_mask).astype(np.int64)
        rkeys = ((right >> shift) & band_mask).astype(np.int64)
        order = np.argsort(rkeys, kind="stable")
        rsorted = rkeys[order]
        for probe in _band_probes(bits, radius):
            keys = lkeys ^ probe
            lo = np.searchsorted(rsorted, keys, side="left")
            hi = np.searchsorted(rsorted, keys, side="right")
            counts = hi - lo
            if not counts.any():
                continue
            li = np.repeat(np.arange(len(left), dtype=np.int64), counts)
            # Positions lo[i]..hi[i]-1 for every i, flattened without a Python loop.
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            ri = right_pos[order[np.repeat(lo, counts) + offsets]]
            # Verify candidates at once (xor + popcount is cheap); only true matches are kept, so
            # the de-duplication below sorts few pairs however many bucket collisions there were.
            ok = hamming(left[li], right[ri]) <= max_distance
            if self_join:
                ok &= li < ri
            found.append((li[ok], ri[ok]))
    li = np.concatenate([f[0] for f in found]) if found else np.empty(0, np.int64)
    ri = np.concatenate([f[1] for f in found]) if found else np.empty(0, np.int64)
    if len(li) == 0:
        return empty
    # A pair agreeing on several bands is found several times; keep one (encoded as one int64).
    code = np.unique(li * np.int64(len(right)) + ri)
    li, ri = code // len(right), code % len(right)
    return pd.DataFrame(
        {"left": li, "right": ri, "distance": hamming(left[li], right[ri])}
    ).reset_index(drop=True)


def phash_pairs_bruteforce(
    left: np.ndarray, right: np.ndarray | None = None, *, max_distance: int = DEFAULT_MAX_DISTANCE
) -> pd.DataFrame:
    """Quadratic reference for `phash_pairs` (tests and benchmarks only)."""
    self_join = right is None
    right = left if right is None else right
    d = np.bitwise_count(np.bitwise_xor(left[:, None], right[None, :])).astype(np.int64)
    li, ri = np.nonzero(d <= max_distance)
    if self_join:
        keep = li < ri
        li, ri = li[keep], ri[keep]
    return pd.DataFrame({"left": li, "right": ri, "distance": d[li, ri]})


def _equal_pairs(left: pd.Series, right: pd.Series | None) -> pd.DataFrame:
    """Row-position pairs with equal non-empty values."""
    lf = pd.DataFrame({"key": left.to_numpy(dtype=object), "left": np.arange(len(left))})
    lf = lf[lf["key"].astype(bool)]
    if right is None:
        merged = lf.merge(lf.rename(columns={"left": "right"}), on="key")
        merged = merged[merged["left"] < merged["right"]]
    else:
        rf = pd.DataFrame({"key": right.to_numpy(dtype=object), "right": np.arange(len(right))})
        rf = rf[rf["key"].astype(bool)]
        merged = lf.merge(rf, on="key")
    return merged[["left", "right"]].astype(np.int64).reset_index(drop=True)


def rule_keys(frame: pd.DataFrame, rule: str) -> pd.Series:
    """The value two rows must share to match under an equality rule ("" = never matches)."""
    if rule == "isic_id":
        return frame["image_id"].map(normalise_isic_id)
    if rule == "sha256":
        return frame["sha256"].fillna("").astype(str)
    if rule in ("lesion", "patient"):
        column = f"{rule}_id"
        return pd.Series(
            [
                group_key(d, rule, str(v or ""))
                for d, v in zip(frame["dataset"], frame[column], strict=True)
            ],
            index=frame.index,
        )
    raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")


def match_pairs(
    left: pd.DataFrame,
    right: pd.DataFrame | None = None,
    *,
    rules: Sequence[str] = RULES,
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> pd.DataFrame:
    """Every pair of rows that match under each rule.

    Args:
        left: index frame (columns ``dataset``, ``image_id``, ``sha256``, ``phash``,
            ``patient_id``, ``lesion_id``).
        right: another index frame; None finds pairs within `left` (left < right).
        rules: which rules to apply (subset of `RULES`).
        max_distance: pHash Hamming threshold.

    Returns:
        DataFrame ``left``, ``right`` (row positions, not labels), ``rule``, ``distance`` (pHash
        distance for the phash rule, else -1). A pair appears once per rule it matches.
    """
    unknown = set(rules) - set(RULES)
    if unknown:
        raise ValueError(f"unknown de-dup rule(s) {sorted(unknown)}; expected some of {RULES}")
    parts = []
    for rule in rules:
        if rule == "phash":
            lh = _valid_phashes(left)
            rh = None if right is None else _valid_phashes(right)
            pairs = phash_pairs(lh[1], None if rh is None else rh[1], max_distance=max_distance)
            pairs["left"] = lh[0][pairs["left"].to_numpy()]
            pairs["right"] = (lh if rh is None else rh)[0][pairs["right"].to_numpy()]
        else:
            pairs = _equal_pairs(
                rule_keys(left, rule), None if right is None else rule_keys(right, rule)
            )
            pairs["distance"] = -1
        pairs["rule"] = rule
        parts.append(pairs)
    cols = ["left", "right", "rule", "distance"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def _valid_phashes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(row positions, uint64 hashes) of rows that have a phash."""
    values = frame["phash"].fillna("").astype(str).to_numpy()
    keep = np.flatnonzero(values != "")
    return keep.astype(np.int64), phash_to_int(values[keep])


def attribute(pairs: pd.DataFrame, side: str = "left") -> pd.Series:
    """The first rule (in `RULES` order) by which each row on `side` matched.

    Returns:
        Series indexed by row position, values rule names.
    """
    if pairs.empty:
        return pd.Series(dtype=object)
    rank = {r: i for i, r in enumerate(RULES)}
    ordered = pairs.assign(_rank=pairs["rule"].map(rank)).sort_values([side, "_rank"])
    first = ordered.drop_duplicates(side)
    return pd.Series(first["rule"].to_numpy(), index=first[side].to_numpy())
