"""Every registered segmentation model: shapes, mask range, safe_mode save/load, one training step."""

import keras
import numpy as np
import pytest

from tfmelanoma.models import create_model, get_model_info, list_models

SIZE = 32  # divisible by 32 for the pretrained-style encoders
# Small settings so the whole registry runs in seconds on 2 CPU cores.
SMALL = {
    "unet": {"base_filters": 4, "depth": 3},
    "attention_unet": {"base_filters": 4, "depth": 3},
    "attention_residual_unet": {"base_filters": 4, "depth": 3},
    "aernet": {"encoder": "efficientnetb0", "decoder_filters": (16, 16, 8, 8, 4)},
}
# Encoders beyond the default, exercised through aernet.
EXTRA = [
    ("aernet", {"encoder": "sm:resnet18", "decoder_filters": (8, 8, 8, 8, 4)}),
    ("aernet", {"encoder": "efficientnet_lite0", "decoder_filters": (8, 8, 8, 8, 4)}),
]
CASES = [(name, SMALL.get(name, {})) for name in list_models(task="segmentation")] + EXTRA
IDS = [f"{n}-{kw.get('encoder', 'default')}" for n, kw in CASES]


def toy_batch(n=4, size=SIZE, seed=0):
    """Bright discs on darker noisy skin; the mask is the disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = rng.uniform(120, 200, size=(n, size, size, 3)).astype("float32")
    masks = np.zeros((n, size, size, 1), "float32")
    for i in range(n):
        cy, cx, r = rng.uniform(size * 0.3, size * 0.7, 2).tolist() + [rng.uniform(4, size / 3)]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
        images[i][disc] = rng.uniform(20, 70, 3)
        masks[i, disc, 0] = 1
    return images, masks


@pytest.fixture(scope="module")
def batch():
    return toy_batch()


def test_all_paper_models_registered():
    names = list_models(task="segmentation")
    for name in (
        "unet",
        "attention_unet",
        "attention_residual_unet",
        "aernet",
        "sm_unet",
        "sm_fpn",
    ):
        assert name in names
        assert get_model_info(name).task == "segmentation"


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_forward_save_load_and_one_step(name, kwargs, batch, tmp_path):
    keras.utils.set_random_seed(0)
    images, masks = batch
    model = create_model(name, input_shape=(SIZE, SIZE, 3), **kwargs)
    assert model.input_shape == (None, SIZE, SIZE, 3)
    probs = np.asarray(model(images, training=False))
    assert probs.shape == (len(images), SIZE, SIZE, 1)
    assert np.all(np.isfinite(probs)) and probs.min() >= 0 and probs.max() <= 1

    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(restored(images, training=False)), probs, atol=1e-6)
    assert restored.get_config()["name"] == model.get_config()["name"]

    # One step on the toy set lowers the (deterministic, same-batch) loss: train_on_batch
    # returns the loss before its update, so the second call sees the first update.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.Dice(axis=(1, 2, 3)))
    first = float(model.train_on_batch(images, masks))
    second = float(model.train_on_batch(images, masks))
    assert second < first, (name, first, second)


def test_aernet_skips_are_taken_by_name():
    model = create_model("aernet", input_shape=(64, 64, 3), bn_momentum=0.9, **SMALL["aernet"])
    names = {layer.name for layer in model.layers}
    for skip in ("block2a_expand_activation", "block6a_expand_activation", "top_activation"):
        assert skip in names
    for i in range(4):
        gate = model.get_layer(f"decoder{i}_attention")
        assert gate.__class__.__name__ == "AttentionGate"
    assert model.get_layer("decoder0_residual").__class__.__name__ == "ResidualBlock"
    assert model.get_layer("colour_space").space == "lab"
    # bn_momentum reaches the backbone's BatchNorms too (short runs need it there most).
    assert model.get_layer("block2a_expand_bn").momentum == 0.9
    assert model.get_layer("decoder0_residual").bn1.momentum == 0.9


def test_aernet_paper_encoder_efficientnetb1():
    # Forward only: B1 shares B0's code path, which the registry test saves, reloads and trains.
    model = create_model("aernet", input_shape=(SIZE, SIZE, 3), decoder_filters=(8, 8, 8, 8, 4))
    assert model.get_layer("block6a_expand_activation") is not None
    probs = np.asarray(model(toy_batch(n=1)[0], training=False))
    assert probs.shape == (1, SIZE, SIZE, 1) and np.all((probs >= 0) & (probs <= 1))


def test_ablation_rows_differ_only_in_their_switch():
    kw = {"input_shape": (SIZE, SIZE, 3), "base_filters": 4, "depth": 2}
    kinds = {}
    for name in ("unet", "attention_unet", "attention_residual_unet"):
        kinds[name] = {layer.__class__.__name__ for layer in create_model(name, **kw).layers}
    assert "AttentionGate" not in kinds["unet"] and "ResidualBlock" not in kinds["unet"]
    assert (
        "AttentionGate" in kinds["attention_unet"]
        and "ResidualBlock" not in kinds["attention_unet"]
    )
    assert {"AttentionGate", "ResidualBlock"} <= kinds["attention_residual_unet"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": (30, 30, 3)}, "divisible by 8"),
        ({"input_shape": (32, 32, 1)}, r"\(height, width, 3\)"),
        ({"input_shape": (32, 32, 3), "encoder": "resnet9000"}, "unknown encoder 'resnet9000'"),
        (
            {"input_shape": (32, 32, 3), "encoder": "sm:nope"},
            "unknown segmentation_models backbone",
        ),
        ({"input_shape": (32, 32, 3), "colour_space": "cmyk"}, "unknown colour space"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    from tfmelanoma.models.segmentation import build_unet

    with pytest.raises(ValueError, match=message):
        build_unet(depth=3, **kwargs)
