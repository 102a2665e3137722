"""`python -m tfmelanoma.evaluate` on Keras-on-JAX with TensorFlow hidden: the same metrics as on
TensorFlow, for a prepared dataset (`tfds.data_source`) and for a folder of images (Pillow)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.tf_hidden import hidden_cli
from tfmelanoma.evaluate import main

pytestmark = pytest.mark.slow

CLI = hidden_cli("tfmelanoma.evaluate")


def _evaluate_jax(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m tfmelanoma.evaluate ARGS` on Keras-on-JAX, TensorFlow hidden."""
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, KERAS_BACKEND="jax", **(env or {})),
        timeout=600,
    )


def _model(path: Path) -> None:
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2, activation="softmax")(x)
    keras.Model(inp, out).save(path)


def _folder(root: Path) -> None:
    """JPEGs and PNGs of several sizes, one JPEG rotated by EXIF (orientation 6), one palette PNG."""
    rng = np.random.default_rng(1)
    for k, folder in enumerate(("melanoma", "non_melanoma")):
        (root / folder).mkdir(parents=True)
        for i in range(6):
            arr = rng.integers(0, 256, (30 + 7 * i, 40 + 3 * i, 3), dtype=np.uint8)
            arr[..., k] = 200
            img = Image.fromarray(arr)
            if i % 2:
                img.save(root / folder / f"{i}.png")
            elif i == 2:
                exif = Image.Exif()
                exif[0x0112] = 6
                img.save(root / folder / f"{i}.jpg", quality=90, exif=exif.tobytes())
            else:
                img.save(root / folder / f"{i}.jpg", quality=90)
    Image.fromarray(arr).convert("P").save(root / "melanoma" / "palette.png")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tfmelanoma.datasets import get_builder

    root = tmp_path_factory.mktemp("eval_jax")
    get_builder("sample", str(root / "tfds"), file_format="array_record")
    _model(root / "m.keras")
    _folder(root / "images")
    return root


def _predictions(out: Path) -> tuple[list[str], np.ndarray]:
    with (out / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    columns = [c for c in rows[0] if c.startswith("prob")]
    return [r["image_id"] for r in rows], np.array([[float(r[c]) for c in columns] for r in rows])


def _compare(tf_out: Path, jax_out: Path) -> None:
    ids_tf, p_tf = _predictions(tf_out)
    ids_jax, p_jax = _predictions(jax_out)
    assert ids_tf == ids_jax and len(ids_tf) > 0
    np.testing.assert_allclose(p_jax, p_tf, atol=2e-5)  # same pixels; resize twins within 1e-3
    m_tf = json.loads((tf_out / "metrics.json").read_text())["summary"]
    m_jax = json.loads((jax_out / "metrics.json").read_text())["summary"]
    for key in ("accuracy", "auc_roc", "ece_top_label"):
        assert m_jax[key] == pytest.approx(m_tf[key], abs=1e-4), key


@pytest.mark.parametrize("source", ["sample", "images"])
def test_jax_run_without_tensorflow_matches_the_tensorflow_run(setup, tmp_path, source, capsys):
    data = (
        ["--test", "sample", "--data-dir", str(setup / "tfds"), "--limit", "48"]
        if source == "sample"
        else ["--images-dir", str(setup / "images")]
    )
    common = ["--model", str(setup / "m.keras"), *data, "--no-val", "--bootstrap", "0"]
    assert main([*common, "--out", str(tmp_path / "tf")]) == 0, capsys.readouterr().err
    out = _evaluate_jax(
        *common, "--out", str(tmp_path / "jax"), env={"TFDS_DATA_DIR": str(setup / "tfds")}
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "TF_LOADED False" in out.stdout
    _compare(tmp_path / "tf", tmp_path / "jax")


def test_jax_run_names_every_bad_image_and_refuses_gradcam(setup, tmp_path):
    images = tmp_path / "images"
    _folder(images)
    (images / "melanoma" / "empty.jpg").write_bytes(b"")
    jpeg = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(jpeg, "JPEG")
    (images / "non_melanoma" / "cut.jpg").write_bytes(jpeg.getvalue()[:200])
    base = ["--model", str(setup / "m.keras"), "--images-dir", str(images), "--no-val"]
    out = _evaluate_jax(*base, "--out", str(tmp_path / "r"))
    assert out.returncode == 2, out.stderr[-3000:]
    assert "2 unreadable image file(s)" in out.stderr
    assert f"{images / 'melanoma' / 'empty.jpg'}: empty file" in out.stderr
    assert f"{images / 'non_melanoma' / 'cut.jpg'}: truncated or corrupt" in out.stderr
    assert not (tmp_path / "r").exists()
    out = _evaluate_jax(*base, "--out", str(tmp_path / "g"), "--gradcam", "2")
    assert out.returncode == 2 and "need the TensorFlow backend" in out.stderr, out.stderr[-2000:]
