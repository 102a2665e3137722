"""The evaluation settings, one frozen dataclass shared by the training CLI, the grid and the CLI."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np


def _default_grid() -> tuple[float, ...]:
    # 0.00, 0.01, ..., 1.00: the paper's useful range is 0-0.2, but normalised entropy lives in
    # [0, 1], so the whole interval is searched and the coverage floor keeps the choice sane.
    return tuple(float(t) for t in np.round(np.linspace(0.0, 1.0, 101), 2))


@dataclass(frozen=True)
class EvalConfig:
    """How predictions are evaluated.

    Attributes:
        ece_bins: number of equal-width confidence bins for ECE and the reliability diagram.
        threshold_grid: candidate normalised-entropy thresholds (each in [0, 1]); a prediction whose
            entropy is strictly above the chosen threshold becomes "uncertain".
        min_coverage: the chosen threshold must retain at least this fraction of validation images.
        entropy_threshold: a fixed threshold to apply instead of choosing one on validation
            (None = choose on validation; with no validation data, no rejection is done).
        reject_on_calibrated: compute entropy from the temperature-scaled probabilities (fitted
            on validation) instead of the model's own. On by default: a model whose outputs all
            sit near 0.5 (a short CPU run) has every entropy near 1, so rejection on its own
            probabilities cannot separate anything. False is the paper's setting.
        calibration_methods: post-hoc calibrators fitted on validation; "temperature" always
            runs when validation data is given, "platt" and "isotonic" are binary-only extras.
        bootstrap_n: bootstrap resamples for the 95 % intervals (0 disables them).
        bootstrap_seed: seed of the bootstrap, so intervals are reproducible.
        confidence_level: the interval's coverage (0.95 = 2.5th to 97.5th percentile).
        max_listed_ids: how many false-positive / false-negative image ids the report lists
            (metrics.json always holds all of them).
        plots: write the PNG plots (turn off for the fastest grid runs).
    """

    ece_bins: int = 10
    threshold_grid: tuple[float, ...] = field(default_factory=_default_grid)
    min_coverage: float = 0.8
    entropy_threshold: float | None = None
    reject_on_calibrated: bool = True
    calibration_methods: tuple[str, ...] = ("temperature",)
    bootstrap_n: int = 1000
    bootstrap_seed: int = 0
    confidence_level: float = 0.95
    max_listed_ids: int = 50
    plots: bool = True

    def __post_init__(self) -> None:
        if self.ece_bins < 1:
            raise ValueError(f"EvalConfig.ece_bins must be >= 1, got {self.ece_bins}")
        grid = tuple(float(t) for t in self.threshold_grid)
        if not grid:
            raise ValueError("EvalConfig.threshold_grid is empty; expected thresholds in [0, 1]")
        for t in grid:
            check_threshold(t, "EvalConfig.threshold_grid")
        object.__setattr__(self, "threshold_grid", tuple(sorted(set(grid))))
        if self.entropy_threshold is not None:
            check_threshold(self.entropy_threshold, "EvalConfig.entropy_threshold")
        if not 0.0 < self.min_coverage <= 1.0:
            raise ValueError(f"EvalConfig.min_coverage must be in (0, 1], got {self.min_coverage}")
        if not 0.0 < self.confidence_level < 1.0:
            raise ValueError(
                f"EvalConfig.confidence_level must be in (0, 1), got {self.confidence_level}"
            )
        if self.bootstrap_n < 0:
            raise ValueError(f"EvalConfig.bootstrap_n must be >= 0, got {self.bootstrap_n}")
        known = {"temperature", "platt", "isotonic"}
        unknown = set(self.calibration_methods) - known
        if unknown:
            raise ValueError(
                f"EvalConfig.calibration_methods has unknown {sorted(unknown)}; known: {sorted(known)}"
            )

    @classmethod
    def from_dict(cls, values: dict | None) -> EvalConfig:
        """Builds a config from a plain dict (e.g. a YAML section), rejecting unknown keys."""
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(
                f"unknown evaluation settings {sorted(unknown)}; known: {sorted(names)}"
            )
        for key in ("threshold_grid", "calibration_methods"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_dict(self) -> dict:
        """The config as JSON-ready plain values."""
        return {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
        }


def check_threshold(value: float, what: str = "entropy threshold") -> float:
    """Returns `value` as float, or raises ValueError when it is not a number in [0, 1]."""
    t = float(value)
    if not np.isfinite(t) or not 0.0 <= t <= 1.0:
        raise ValueError(f"{what} must be in [0, 1] (normalised entropy), got {value!r}")
    return t
