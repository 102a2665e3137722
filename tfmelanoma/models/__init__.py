"""Model zoo: importing this package registers every model."""

from tfmelanoma.models import segmentation  # noqa: F401  (registers segmentation models)
from tfmelanoma.models.registry import (
    ModelInfo,
    create_model,
    get_model_info,
    list_models,
    register_model,
)

__all__ = ["ModelInfo", "create_model", "get_model_info", "list_models", "register_model"]
