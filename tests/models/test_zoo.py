"""Every classifier / multi-task entry of the registry, checked automatically (timm style).

Each entry: builds on a small input, forward pass without NaN giving probabilities, one training
step that changes the trainable weights, `get_config` round trip, `.keras` save/load with
`safe_mode=True` giving identical outputs, and the documented parameter count (within 1 %).
Segmentation entries are tested by tests/segmentation.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfmelanoma.models import create_model, get_model_info, list_models

# Per-entry overrides that shrink models too big for a 2-core CI box. They change layer widths
# only, never the code path under test; the documented parameter count is still checked at the
# default configuration (test_param_count).
SMALL_KWARGS = {
    "vgg11": {"fc_units": 32},
    "alexnet": {"fc_units": 32},
}

ENTRIES = [n for n in list_models() if get_model_info(n).task in ("classification", "multitask")]


def _is_slow(name: str) -> bool:
    return "slow" in get_model_info(name).tags


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if _is_slow(n) else n for n in names]


def _small_model(name: str, num_classes: int = 2) -> tuple[keras.Model, np.ndarray]:
    info = get_model_info(name)
    size = info.min_input_size
    keras.utils.set_random_seed(0)
    model = create_model(
        name,
        input_shape=(size, size, 3),
        num_classes=num_classes,
        **SMALL_KWARGS.get(name, {}),
    )
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    return model, images


def _as_dict(outputs) -> dict:
    return outputs if isinstance(outputs, dict) else {"diagnosis": outputs}


def test_unknown_name_lists_known_models():
    with pytest.raises(ValueError, match="Known models:.*meshnet"):
        create_model("meshnett")
    with pytest.raises(ValueError, match="Did you mean 'meshnet'"):
        get_model_info("meshnett")


@pytest.mark.parametrize("name", _params(ENTRIES))
@pytest.mark.parametrize("num_classes", [1, 2])
def test_forward_gives_probabilities(name, num_classes):
    model, images = _small_model(name, num_classes)
    probs = _as_dict(model(images, training=False))["diagnosis"]
    probs = keras.ops.convert_to_numpy(probs)
    assert probs.shape == (2, num_classes)
    assert np.all(np.isfinite(probs))
    assert np.all((probs >= 0) & (probs <= 1))
    if num_classes > 1:
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", _params(ENTRIES))
def test_train_step_config_and_save_roundtrip(name, tmp_path):
    model, images = _small_model(name)
    info = get_model_info(name)
    # Names promised by ModelInfo exist, so Grad-CAM and U-Net skips can use them.
    if info.last_conv_layer:
        model.get_layer(info.last_conv_layer)
    for skip in info.skip_layers:
        model.get_layer(skip)

    labels = keras.utils.to_categorical([0, 1], 2)
    if info.task == "multitask":
        from tfmelanoma.models.multitask import compile_multitask, multitask_targets

        compile_multitask(model, optimizer=keras.optimizers.SGD(0.1))
        targets = multitask_targets(model, labels, ages=np.array([35.0, 70.0]))
    else:
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
        targets = labels
    before = [w.numpy().copy() for w in model.trainable_weights]
    logs = model.train_on_batch(images, targets, return_dict=True)
    assert np.isfinite(logs["loss"]), logs
    changed = [
        not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights, strict=True)
    ]
    assert any(changed), "one SGD step changed no trainable weight"

    expected = _as_dict(model.predict(images, verbose=0))
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    for key, value in _as_dict(clone.predict(images, verbose=0)).items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-5, atol=1e-6)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    for key, value in _as_dict(loaded.predict(images, verbose=0)).items():
        np.testing.assert_array_equal(value, expected[key])


def _param_cases():
    cases = []
    for name in ENTRIES:
        info = get_model_info(name)
        if info.params is None:
            continue
        # Default configurations of VGG-class models have > 50 M parameters: slow.
        big = _is_slow(name) or info.params > 50_000_000
        cases.append(pytest.param(name, marks=pytest.mark.slow) if big else name)
    return cases


@pytest.mark.parametrize("name", _param_cases())
def test_param_count_matches_documented(name):
    info = get_model_info(name)
    model = create_model(name)
    assert model.count_params() == pytest.approx(info.params, rel=0.01)
    assert model.input_shape == (None, info.input_size, info.input_size, 3)
