"""Model registry: `@register_model` on small factory functions, `create_model(name, **kw)`.

Follows timm's `_registry.py`: a name maps to a factory and a frozen `ModelInfo`; unknown names
raise with the list of known ones. Tests iterate `list_models()` so every entry is checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

import keras


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of a registered model.

    Attributes:
        name: registry name.
        family: e.g. "efficientnet", "meshnet", "small_cnn", "unet".
        task: "classification", "segmentation" or "multitask".
        input_size: default square input size in pixels.
        preprocessing: what the model does to its input. Every registry model takes float32 RGB
            in [0, 255] and normalises inside the model (built-in layers only), so pipelines, TTA,
            Grad-CAM and TF.js all feed the same pixels; this string documents which normalisation.
        last_conv_layer: name of the last convolutional layer (Grad-CAM); "" if not applicable.
        params: documented parameter count at the default configuration (tests check within 1 %).
        paper: which paper the model comes from, if any.
        tfjs_ok: the model uses only ops TF.js runs.
        tags: free-form labels, e.g. ("paper_grid", "slow").
        min_input_size: smallest square input the default architecture accepts (tests use it).
        skip_layers: names of layers whose outputs a U-Net decoder can take as skips, from
            high to low resolution (strides 2, 4, 8, 16); empty when not meant as an encoder.
        imagenet: `weights="imagenet"` gives the model an ImageNet backbone or encoder; False
            for the models trained from scratch (MeshNet, the small CNNs refuse it).
    """

    name: str
    family: str
    task: str
    input_size: int
    preprocessing: str
    last_conv_layer: str = ""
    params: int | None = None
    paper: str = ""
    tfjs_ok: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)
    min_input_size: int = 32
    skip_layers: tuple[str, ...] = field(default_factory=tuple)
    imagenet: bool = False


_FACTORIES: dict[str, Callable[..., keras.Model]] = {}
_INFOS: dict[str, ModelInfo] = {}


def register_model(
    info: ModelInfo,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator registering `fn` under `info.name`."""

    def decorator(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if info.name in _FACTORIES:
            raise ValueError(f"model {info.name!r} is registered twice")
        _FACTORIES[info.name] = fn
        _INFOS[info.name] = info
        return fn

    return decorator


def list_models(task: str | None = None, family: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally filtered by task and family."""
    return sorted(
        n
        for n, i in _INFOS.items()
        if (task is None or i.task == task) and (family is None or i.family == family)
    )


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, list(_INFOS), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ValueError(f"unknown model {name!r}.{hint} Known models: {', '.join(list_models())}")


def get_model_info(name: str) -> ModelInfo:
    """The `ModelInfo` of a registered model; raises ValueError listing known names."""
    try:
        return _INFOS[name]
    except KeyError:
        raise _unknown(name) from None


def create_model(name: str, **kwargs) -> keras.Model:
    """Builds a registered model.

    Args:
        name: registry name (see `list_models()`).
        **kwargs: passed to the factory (e.g. `num_classes`, `input_shape`, `weights`).

    Raises:
        ValueError: unknown name, listing the known ones.
    """
    if name not in _FACTORIES:
        raise _unknown(name)
    try:
        return _FACTORIES[name](**kwargs)
    except TypeError as e:
        if "unexpected keyword argument" not in str(e):
            raise
        raise ValueError(
            f"model {name!r}: {e}. A preset made for another model sets it (the default preset "
            "fine-tunes a pretrained EfficientNet-Lite0: model.options={trainable_from: 0}, "
            "model.weights=imagenet): pass --set model.options={} --set model.weights= , or "
            "start from --config smoke"
        ) from None


def walk_layers(model):
    """Every layer of `model`, nested models' layers included (depth first, parents first)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from walk_layers(layer)
