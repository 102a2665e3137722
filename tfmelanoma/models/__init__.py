"""Model zoo: importing this package registers every model."""

# Importing a module registers its models.
from tfmelanoma.models import (  # noqa: F401
    efficientnet_lite,
    meshnet,
    multitask,
    segmentation,
    small_cnns,
    transfer,
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
