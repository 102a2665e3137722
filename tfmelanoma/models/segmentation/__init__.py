"""Segmentation models (AER-Net and baselines); importing registers them.

Registered: `unet`, `attention_unet`, `attention_residual_unet`, `aernet` (AER-Net's ablation
table) and `sm_unet`, `sm_fpn` (segmentation_models baselines). Custom layers: `AttentionGate`,
`ResidualBlock`, `ColourSpace`. The training loss and compiled metrics live in `.losses`;
pipelines are in `tfmelanoma.data`, scores and reports in `tfmelanoma.evaluation.segmentation`.
"""

# Importing registers the models, and the losses/metrics that compiled .keras files reference.
from tfmelanoma.models.segmentation import (  # noqa: F401
    baselines,
    losses,
    registry_entries,
)
from tfmelanoma.models.segmentation.attention_gate import AttentionGate
from tfmelanoma.models.segmentation.colour_space import ColourSpace
from tfmelanoma.models.segmentation.residual_block import ResidualBlock
from tfmelanoma.models.segmentation.unet import build_unet

__all__ = ["AttentionGate", "ColourSpace", "ResidualBlock", "build_unet"]
