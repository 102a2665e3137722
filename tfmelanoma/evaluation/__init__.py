"""Evaluation: metrics, calibration, entropy rejection, TTA, ensembles, Grad-CAM and the report.

`evaluate_predictions` is the one entry point the training CLI, the grid and
`python -m tfmelanoma.evaluate` call. This package's top level imports NumPy, SciPy and
scikit-learn only; the Keras parts (`tta`, `ensemble`, `gradcam`, `predict`) are submodules to
import explicitly.
"""

from tfmelanoma.evaluation.config import EvalConfig
from tfmelanoma.evaluation.core import evaluate_predictions
from tfmelanoma.evaluation.uncertainty import normalized_entropy, select_threshold

__all__ = ["EvalConfig", "evaluate_predictions", "normalized_entropy", "select_threshold"]
