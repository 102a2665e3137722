"""Second, independent check of perceptual-hash candidates: is it really the same photograph?

A 64-bit pHash sees an image at 32 x 32 grey levels, so different lesions photographed with
the same dermatoscope (the dark circular edge, a pale even background, a small central lesion)
can land within a few bits of each other. Measured on ISIC 2017 / ISIC Archive / Kaggle pairs
(docs/datasets.md), half of the candidates at distance <= 4 between ISIC 2017 splits were
different lesions. Each candidate pair is therefore confirmed on the pixels, by either of two
checks that look at the central crop only (the dermatoscope edge is cut away):

- **texture correlation**: the correlation of the fine structure (grey levels rank-normalised,
  then high-passed) of both images stretched to one size. Rank normalisation makes it blind to
  recolouring (colour constancy, brightness), the high-pass to the lesion-on-skin layout that
  fools the pHash. Copies, resized or recoloured, score > 0.4; different lesions < 0.3.
- **matched keypoints**: ORB keypoints matched and checked by RANSAC for one similarity
  transform (scikit-image). Catches copies that are shifted, rotated or re-cropped (Kaggle's
  augmented re-uploads), where aligned correlation fails; different lesions give 0-3 inliers.

A pair is confirmed when the texture correlation reaches `MIN_TEXTURE` or the inliers reach
`MIN_INLIERS`. Another photograph of the same lesion from nearly the same view can pass the
keypoint check: that is leakage too, and the contact sheet shows it for a person to judge.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

MIN_TEXTURE = 0.6
"""Texture correlation at or above which a candidate is confirmed (aligned copies: >= 0.88)."""
MIN_INLIERS = 10
"""RANSAC inliers at or above which a candidate is confirmed (different lesions: <= 3)."""
CENTRE = 0.7
"""Side fraction of the central crop that is compared (cuts the dermatoscope's dark edge)."""
_SIDE = 192  # both images are stretched to this square before cropping


@dataclass(frozen=True)
class Fingerprint:
    """What the checks need of one image (computed once per image)."""

    texture: np.ndarray  # float64 (64, 64), zero mean, unit norm
    keypoints: np.ndarray  # (K, 2) row, col in the central crop
    descriptors: np.ndarray  # (K, 256) bool


@dataclass(frozen=True)
class Verdict:
    """The checks' scores for one pair and whether they confirm it."""

    texture: float
    inliers: int

    @property
    def confirmed(self) -> bool:
        return self.texture >= MIN_TEXTURE or self.inliers >= MIN_INLIERS


def _centre_grey(image: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] of the central `CENTRE` crop of `image` stretched to _SIDE^2."""
    img = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("L")
    grey = np.asarray(img.resize((_SIDE, _SIDE), Image.Resampling.BILINEAR), dtype=np.float64)
    margin = int(round(_SIDE * (1 - CENTRE) / 2))
    return grey[margin : _SIDE - margin, margin : _SIDE - margin] / 255.0


def _texture(grey: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter
    from scipy.stats import rankdata

    small = np.asarray(
        Image.fromarray((grey * 255).astype(np.uint8)).resize((64, 64), Image.Resampling.BILINEAR),
        dtype=np.float64,
    )
    ranks = rankdata(small.ravel()).reshape(small.shape)
    high = ranks - gaussian_filter(ranks, 3)
    high -= high.mean()
    norm = np.sqrt((high * high).sum())
    return high / norm if norm > 0 else high


def fingerprint(image: np.ndarray) -> Fingerprint:
    """The `Fingerprint` of a uint8 RGB (or grey) image of any size."""
    from skimage.feature import ORB

    grey = _centre_grey(image)
    orb = ORB(n_keypoints=150, fast_threshold=0.04, downscale=1.3, n_scales=4)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            orb.detect_and_extract(grey)
        keypoints, descriptors = orb.keypoints, orb.descriptors
    except RuntimeError:  # a flat image: no keypoints
        keypoints, descriptors = np.zeros((0, 2)), np.zeros((0, 256), dtype=bool)
    return Fingerprint(_texture(grey), keypoints, descriptors)


def texture_correlation(a: Fingerprint, b: Fingerprint) -> float:
    """Correlation (-1..1) of the two images' rank-normalised, high-passed central crops."""
    return float((a.texture * b.texture).sum())


def matched_keypoints(a: Fingerprint, b: Fingerprint, *, seed: int = 0) -> int:
    """Keypoint matches that agree on one similarity transform (RANSAC inliers)."""
    from skimage.feature import match_descriptors
    from skimage.measure import ransac
    from skimage.transform import SimilarityTransform

    if len(a.keypoints) < 3 or len(b.keypoints) < 3:
        return 0
    matches = match_descriptors(a.descriptors, b.descriptors, cross_check=True, max_ratio=0.8)
    if len(matches) < 3:
        return 0
    src = a.keypoints[matches[:, 0]][:, ::-1]
    dst = b.keypoints[matches[:, 1]][:, ::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, inliers = ransac(
            (src, dst),
            SimilarityTransform,
            min_samples=3,
            residual_threshold=2.5,
            max_trials=300,
            rng=seed,
        )
    return 0 if inliers is None else int(inliers.sum())


def verify(a: Fingerprint, b: Fingerprint) -> Verdict:
    """Both checks of one candidate pair; `Verdict.confirmed` says whether it is a copy."""
    texture = texture_correlation(a, b)
    # The keypoint check is the slower one; an aligned copy needs no second opinion.
    inliers = -1 if texture >= MIN_TEXTURE else matched_keypoints(a, b)
    return Verdict(round(texture, 4), inliers)


_EXACT_RULES = ("isic_id", "sha256")


def _keys(frame: pd.DataFrame, rows) -> list[tuple[str, str, int]]:
    sub = frame.iloc[np.asarray(rows, dtype=np.int64)]
    return list(
        zip(sub["dataset"], sub["split"], sub["position"].astype(int).tolist(), strict=True)
    )


class PixelCheck:
    """`combination.plan(confirm=...)`: pHash matches remove a row only when `verify` agrees.

    Pairs that an exact rule (same ISIC id, same pixels) also matches are not re-checked. Every
    checked pair's scores are kept: confirmed pairs carry them into the removal records, rejected
    ones are listed by `rejected()` (for the report and its contact sheet).

    Args:
        data_dir: TFDS data dir the index rows refer to.
        read: rows (dataset, split, position) -> {key: uint8 image}; defaults to
            `materialise.read_images` (tests pass their own).
    """

    def __init__(self, data_dir: str | None = None, *, read=None):
        from tfmelanoma.datasets import materialise

        self._read = read or (lambda rows: materialise.read_images(rows, data_dir))
        self._prints: dict[tuple[str, str, int], Fingerprint] = {}
        self._rejected: list[pd.DataFrame] = []

    def _fingerprints(self, keys) -> None:
        missing = list(dict.fromkeys(k for k in keys if k not in self._prints))
        if missing:
            images = self._read(pd.DataFrame(missing, columns=["dataset", "split", "position"]))
            for key in missing:
                self._prints[key] = fingerprint(images[key])

    def __call__(
        self, left: pd.DataFrame, right: pd.DataFrame, pairs: pd.DataFrame, stage: str
    ) -> pd.DataFrame:
        """`pairs` with ``texture`` and ``inliers`` added and the unconfirmed pHash pairs dropped."""
        pairs = pairs.assign(texture=np.nan, inliers=-1).reset_index(drop=True)
        exact = pd.MultiIndex.from_frame(
            pairs.loc[pairs["rule"].isin(_EXACT_RULES), ["left", "right"]]
        )
        both = pd.MultiIndex.from_frame(pairs[["left", "right"]]).isin(exact)
        todo = np.flatnonzero((pairs["rule"] == "phash").to_numpy() & ~both)
        if not len(todo):
            return pairs
        lkeys = _keys(left, pairs["left"].to_numpy()[todo])
        rkeys = _keys(right, pairs["right"].to_numpy()[todo])
        self._fingerprints(lkeys + rkeys)
        verdicts = [
            verify(self._prints[a], self._prints[b]) for a, b in zip(lkeys, rkeys, strict=True)
        ]
        pairs.loc[todo, "texture"] = [v.texture for v in verdicts]
        pairs.loc[todo, "inliers"] = [v.inliers for v in verdicts]
        confirmed = np.array([v.confirmed for v in verdicts], dtype=bool)
        if (~confirmed).any():
            bad = pairs.iloc[todo[~confirmed]]
            lrows = left.iloc[bad["left"].to_numpy(dtype=np.int64)]
            rrows = right.iloc[bad["right"].to_numpy(dtype=np.int64)]
            self._rejected.append(
                pd.DataFrame(
                    {
                        "stage": stage,
                        "dataset": lrows["dataset"].to_numpy(),
                        "split": lrows["split"].to_numpy(),
                        "position": lrows["position"].to_numpy(),
                        "image_id": lrows["image_id"].to_numpy(),
                        "matched_dataset": rrows["dataset"].to_numpy(),
                        "matched_split": rrows["split"].to_numpy(),
                        "matched_position": rrows["position"].to_numpy(),
                        "matched_image_id": rrows["image_id"].to_numpy(),
                        "distance": bad["distance"].to_numpy(),
                        "texture": bad["texture"].to_numpy(),
                        "inliers": bad["inliers"].to_numpy(),
                    }
                )
            )
        return pairs.drop(index=todo[~confirmed]).reset_index(drop=True)

    def rejected(self) -> pd.DataFrame:
        """pHash candidates the pixel check rejected (one row per pair, with both rows named)."""
        if not self._rejected:
            return pd.DataFrame(columns=[*REJECTED_COLUMNS])
        return pd.concat(self._rejected, ignore_index=True).drop_duplicates(
            ["dataset", "split", "position", "matched_dataset", "matched_split", "matched_position"]
        )


REJECTED_COLUMNS = (
    "stage", "dataset", "split", "position", "image_id", "matched_dataset", "matched_split",
    "matched_position", "matched_image_id", "distance", "texture", "inliers",
)  # fmt: skip
