"""Transfer classifiers: weights pass-through, freezing / fine-tuning from a layer, the table."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfmelanoma.models import create_model, get_model_info, list_models
from tfmelanoma.models.transfer import ARCHITECTURES

SMALL = {"input_shape": (32, 32, 3)}


def _backbone_layers(model):
    return [
        layer
        for layer in model.layers
        if layer.name not in {"image", "head_pool", "head_dropout", "logits", "predictions"}
        and not layer.name.startswith("preprocess_")
    ]


def test_table_covers_the_paper_grid():
    names = {a.name for a in ARCHITECTURES}
    assert len(names) == len(ARCHITECTURES) >= 24
    for name in ("vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "densenet121",
                 "densenet169", "densenet201", "mobilenet_v2", "mobilenet_v3_large",
                 "inception_v3", "inception_resnet_v2", "xception",
                 *(f"efficientnet_b{i}" for i in range(8))):  # fmt: skip
        assert name in names
        assert get_model_info(name).task == "classification"
    assert set(list_models(family="efficientnet")) >= {f"efficientnet_b{i}" for i in range(8)}


def test_weights_argument_is_passed_through(monkeypatch):
    calls = []
    original = keras.applications.MobileNetV2

    def spy(**kwargs):
        calls.append(dict(kwargs))
        return original(**{**kwargs, "weights": None})  # nothing is downloaded in tests

    monkeypatch.setattr(keras.applications, "MobileNetV2", spy)
    model = create_model("mobilenet_v2", weights="imagenet", **SMALL)
    assert calls[0]["weights"] == "imagenet" and calls[0]["include_top"] is False
    # Pretrained weights → frozen backbone by default (the uncertainty paper's recipe): only
    # the head trains.
    assert [w.path for w in model.trainable_weights] == ["logits/kernel", "logits/bias"]
    create_model("mobilenet_v2", weights="/some/notop.h5", **SMALL)
    assert calls[1]["weights"] == "/some/notop.h5"


def test_batchnorm_trains_from_random_init_only():
    # From scratch everything trains (frozen random BatchNorm makes activations vanish)...
    model = create_model("mobilenet_v2", **SMALL)
    assert all(layer.trainable for layer in _backbone_layers(model))
    # ...while when fine-tuning, BatchNorm stays in inference mode unless asked.
    model = create_model("mobilenet_v2", trainable_from=0, train_batchnorm=False, **SMALL)
    assert all(
        layer.trainable != isinstance(layer, keras.layers.BatchNormalization)
        for layer in _backbone_layers(model)
        if layer.weights
    )


def test_backbone_options_reach_the_keras_constructor():
    # A MobileNetV3Small a quarter of the default's size (the web student of docs/webdemo.md).
    model = create_model(
        "mobilenet_v3_small", backbone_options={"alpha": 0.5, "minimalistic": True}, **SMALL
    )
    assert model.count_params() == 131_618 < get_model_info("mobilenet_v3_small").params
    assert not any("squeeze_excite" in layer.name for layer in model.layers)  # minimalistic
    assert any(
        "squeeze_excite" in layer.name
        for layer in create_model("mobilenet_v3_small", **SMALL).layers
    )


def test_batchnorm_momentum_from_random_init(tmp_path):
    # Keras's MobileNets average BatchNorm statistics with momentum 0.999 (ImageNet's 10^5+
    # steps); from random init over a few thousand steps the averages stay near 0 / 1 and
    # inference answers every image alike, so random-init training uses 0.99.
    def momenta(model):
        return {
            layer.momentum
            for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)
        }

    assert momenta(create_model("mobilenet_v3_small", **SMALL)) == {0.99}
    # Pretrained BatchNorm (frozen: inference mode) keeps the constructor's momentum.
    pretrained = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None,
                                                     include_top=False)  # fmt: skip
    path = str(tmp_path / "notop.weights.h5")
    pretrained.save_weights(path)
    assert momenta(create_model("mobilenet_v3_small", weights=path, **SMALL)) == {0.999}


@pytest.mark.parametrize("trainable_from", ["block_16_project", -5])
def test_fine_tune_from_layer_name_or_index(trainable_from):
    model = create_model(
        "mobilenet_v2", trainable_from=trainable_from, train_batchnorm=False, **SMALL
    )
    backbone = _backbone_layers(model)
    start = next(i for i, layer in enumerate(backbone) if layer.trainable)
    if isinstance(trainable_from, str):
        assert backbone[start].name == trainable_from
    else:
        assert start == len(backbone) + trainable_from
    assert not any(layer.trainable for layer in backbone[:start])
    trained = {w.path.split("/")[0] for w in model.trainable_weights}
    assert trained == {"block_16_project", "Conv_1", "logits"}


def test_frozen_backbone_with_none():
    model = create_model("mobilenet_v2", trainable_from=None, **SMALL)
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"logits"}


@pytest.mark.parametrize(
    "trainable_from, match",
    [("no_such_layer", "not a layer of the backbone"), (10_000, "outside"), (1.5, "layer index")],
)
def test_bad_trainable_from(trainable_from, match):
    with pytest.raises(ValueError, match=match):
        create_model("mobilenet_v2", trainable_from=trainable_from, **SMALL)


def test_multiclass_head_and_grad_cam_layer():
    model = create_model("mobilenet_v3_small", num_classes=9, dropout=0.3, **SMALL)
    assert model.output_shape == (None, 9)
    assert model.get_layer("head_dropout").rate == 0.3
    # Grad-CAM needs the gradient of a class score wrt the named conv layer's output.
    info = get_model_info("mobilenet_v3_small")
    grad_model = keras.Model(
        model.input, [model.get_layer(info.last_conv_layer).output, model.output]
    )
    conv, probs = grad_model(np.zeros((1, 32, 32, 3), "float32"))
    assert conv.shape[-1] == 576 and np.isfinite(keras.ops.convert_to_numpy(probs)).all()
