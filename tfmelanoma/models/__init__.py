"""Model zoo: importing this package registers every model."""

from tfmelanoma.models import (
    meshnet,  # noqa: F401  (registers the web classifier)
    segmentation,  # noqa: F401  (registers segmentation models)
)
from tfmelanoma.models.bn_folding import fold_batchnorm
from tfmelanoma.models.registry import (
    ModelInfo,
    create_model,
    get_model_info,
    list_models,
    register_model,
)

__all__ = [
    "ModelInfo",
    "create_model",
    "fold_batchnorm",
    "get_model_info",
    "list_models",
    "register_model",
]
