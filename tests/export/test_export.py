"""`python -m export.tfjs`: conversion, quantisation, meta.json, model.js and Keras/TF.js parity.

The conversions run the real vendored converter and the real TF.js (Node, CPU backend), so they
are marked slow; they need `node` and `npm ci --prefix webdemo` (CI installs both).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from export import parity, tfjs

REPO = Path(__file__).resolve().parents[2]
HAVE_NODE = (
    shutil.which("node") is not None
    and (REPO / "webdemo/node_modules/@tensorflow/tfjs-core").is_dir()
)
needs_node = pytest.mark.skipif(not HAVE_NODE, reason="needs node and `npm ci --prefix webdemo`")


def _tiny_model(path: Path, name: str = "meshnet", **kw) -> Path:
    from tfmelanoma.models import create_model

    model = create_model(name, **kw)
    # Random but non-trivial weights: scale the logits so outputs are not all ~0.5.
    logits = model.get_layer("logits")
    w, b = logits.get_weights()
    logits.set_weights([w * 20.0, b])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory) -> Path:
    return _tiny_model(
        tmp_path_factory.mktemp("tiny") / "tiny.keras",
        input_shape=(48, 48, 3),
        width=6,
        dilations=(1, 2, 1),
    )


@pytest.fixture(scope="module")
def exports(tiny_keras, tmp_path_factory) -> dict[str, Path]:
    """The tiny model exported at every quantisation (one conversion each, shared by tests)."""
    if not HAVE_NODE:
        pytest.skip("needs node and `npm ci --prefix webdemo`")
    out = {}
    for q in ("float32", "float16", "uint8"):
        d = tmp_path_factory.mktemp(q)
        assert tfjs.main(["--model", str(tiny_keras), "--out", str(d), "--quantization", q]) == 0
        out[q] = d
    return out


@pytest.mark.slow
@needs_node
def test_float32_parity_and_meta(exports):
    meta = json.loads((exports["float32"] / "meta.json").read_text())
    assert meta["class_names"] == ["non_melanoma", "melanoma"]
    assert meta["input"] == {
        "height": 48,
        "width": 48,
        "channels": 3,
        "dtype": "float32",
        "range": [0, 255],
        "color": "RGB",
    }
    assert meta["preprocessing"]["resize"] == "bilinear"
    assert meta["uncertainty"]["entropy_threshold"] == tfjs.DEFAULT_ENTROPY_THRESHOLD
    assert meta["uncertainty"]["source"].startswith("documented defaults")
    p = meta["parity"]
    # gallery images + 4 random ones went through both Keras and TF.js
    assert p["passed"] and p["max_abs_diff"] <= 1e-4 and p["n_images"] >= 4
    assert (
        meta["model_version"].startswith("meshnet-")
        and meta["quantization"] in meta["model_version"]
    )


@pytest.mark.slow
@needs_node
def test_quantised_sizes_and_bounds(exports):
    sizes = {
        q: json.loads((d / "meta.json").read_text())["weights_bytes"] for q, d in exports.items()
    }
    # float16 halves every float weight; uint8 quarters it (plus per-tensor min/scale in model.json).
    assert sizes["float16"] < 0.6 * sizes["float32"]
    assert sizes["uint8"] < 0.35 * sizes["float32"]
    for q, d in exports.items():
        p = json.loads((d / "meta.json").read_text())["parity"]
        assert p["passed"], (q, p)
        assert p["max_abs_diff"] <= parity.PARITY_BOUNDS[q]
    manifest = json.loads((exports["uint8"] / "model.json").read_text())["weightsManifest"][0][
        "weights"
    ]
    assert any(w.get("quantization", {}).get("dtype") == "uint8" for w in manifest)


@pytest.mark.slow
@needs_node
def test_model_js_embeds_the_same_model(exports):
    d = exports["float32"]
    text = (d / "model.js").read_text()
    payload = json.loads(text.split("self.TFMELANOMA_MODEL = ", 1)[1].rstrip().rstrip(";"))
    assert payload["meta"] == json.loads((d / "meta.json").read_text())
    assert payload["modelJson"] == json.loads((d / "model.json").read_text())
    assert base64.b64decode(payload["weights"]) == (d / "group1-shard1of1.bin").read_bytes()


def _report(run: Path) -> dict:
    """A real `evaluate_predictions` report in `run/evaluation/` (no plots, no bootstrap)."""
    from tfmelanoma.evaluation import evaluate_predictions

    rng = np.random.default_rng(1)

    def split(n):
        y = rng.integers(0, 2, n)
        p1 = np.clip(0.5 + (y - 0.5) * rng.uniform(0, 1.6, n), 0.01, 0.99)
        return y, np.stack([1 - p1, p1], 1)

    (y_val, p_val), (y_test, p_test) = split(300), split(200)
    return evaluate_predictions(
        y_test,
        p_test,
        [f"i{i}" for i in range(200)],
        ["non_melanoma", "melanoma"],
        run / "evaluation",
        val_labels=y_val,
        val_probs=p_val,
        config={"plots": False, "bootstrap_n": 0},
    )


@pytest.mark.parametrize(
    ("drop", "key"),
    [
        (("rejection", "threshold"), "rejection.threshold"),
        (("calibration", "params"), "calibration.params"),
        (("summary",), "summary"),
    ],
)
def test_a_missing_metrics_key_names_the_file_and_the_key(tiny_keras, tmp_path, capsys, drop, key):
    """One known layout: `evaluation/metrics.json` of `tfmelanoma.evaluation`; a key the page
    needs that is not there is an error naming the file and the key, before `--out` is made."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_keras, run / "best.keras")
    report = json.loads(json.dumps(_report(run), default=float))
    parent = report
    for k in drop[:-1]:
        parent = parent[k]
    del parent[drop[-1]]
    path = run / "evaluation" / "metrics.json"
    path.write_text(json.dumps(report))
    out = tmp_path / "out"
    assert tfjs.main(["--model", str(run), "--out", str(out), "--skip-parity"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and repr(key) in err
    assert not out.exists()


def test_metrics_are_read_from_the_run_evaluation_only(tiny_keras, tmp_path, capsys):
    """A metrics.json elsewhere in the run is not searched for; several test-set reports need
    --metrics; without any report the documented defaults apply."""
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    shutil.copy(tiny_keras, run / "best.keras")
    (run / "eval" / "metrics.json").write_text(json.dumps({"rejection": {"threshold": 0.1}}))
    assert tfjs.find_metrics(run, None) is None
    assert tfjs.uncertainty_settings(None, None)["entropy_threshold"] == (
        tfjs.DEFAULT_ENTROPY_THRESHOLD
    )
    (run / "evaluation" / "ph2").mkdir(parents=True)
    (run / "evaluation" / "ph2" / "metrics.json").write_text("{}")
    out = tmp_path / "out"
    assert tfjs.main(["--model", str(run), "--out", str(out), "--skip-parity"]) == 2
    err = capsys.readouterr().err
    assert "one report per test set (ph2)" in err and "--metrics" in err


@pytest.mark.slow
def test_training_cli_run_folder_with_real_evaluation_report(tiny_keras, tmp_path, capsys):
    """The layout `python -m tfmelanoma.train` writes: best.keras, checkpoints/last.keras,
    a summary metrics.json and the full evaluation/metrics.json of `evaluate_predictions`."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_keras, run / "best.keras")
    shutil.copy(tiny_keras, run / "checkpoints" / "last.keras")
    result = _report(run)
    (run / "metrics.json").write_text(
        json.dumps({"best_epoch": 3, "test": result["summary"]}, default=float)
    )
    data = {"train": ["isic2017"], "test": "isic2017", "sizes": {"train": 10}, "seed": 0}
    (run / "data.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    assert tfjs.main(["--model", str(run), "--out", str(out), "--skip-parity"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    printed = capsys.readouterr().out
    assert f"wrote {out}: model.json + weights" in printed and "parity not checked" in printed
    # What the run trained on, from its data.json (provenance in the page's meta).
    assert meta["training"]["data"] == {k: data[k] for k in ("train", "test", "sizes")}
    u = meta["uncertainty"]
    assert u["entropy_threshold"] == pytest.approx(result["rejection"]["threshold"])
    assert u["temperature"] == pytest.approx(
        result["calibration"]["params"]["temperature"]["temperature"]
    )
    # Rejection on temperature-scaled probabilities is the evaluation default (issue #20).
    assert u["temperature"] != 1.0 and u["reject_on_calibrated"] is True
    assert u["source"] == str(run / "evaluation" / "metrics.json")
    assert meta["metrics"]["auc_roc"] == pytest.approx(result["summary"]["auc_roc"])


@pytest.mark.slow
@needs_node
def test_every_tfjs_registry_model_converts_with_parity(tmp_path):
    from tfmelanoma.models import get_model_info, list_models

    names = [n for n in list_models(task="classification") if get_model_info(n).tfjs_ok]
    assert "meshnet" in names
    for name in names:
        if name == "meshnet":
            continue  # covered above
        src = _tiny_model(tmp_path / f"{name}.keras", name, num_classes=2, input_shape=(64, 64, 3))
        out = tmp_path / name
        assert tfjs.main(["--model", str(src), "--out", str(out)]) == 0, name
        assert json.loads((out / "meta.json").read_text())["parity"]["passed"], name


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert tfjs.main(["--model", str(tmp_path / "nope.keras"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nope.keras" in err and "no such file" in err
    assert not (tmp_path / "o").exists()


def test_wrong_file_type_and_empty_run_folder(tmp_path, capsys):
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF")
    assert tfjs.main(["--model", str(h5), "--out", str(tmp_path / "o")]) == 2
    assert "expected a .keras file" in capsys.readouterr().err
    assert tfjs.main(["--model", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "exactly one *.keras" in capsys.readouterr().err


def test_compare_catches_differences():
    k = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    ok = parity.compare(k, k + 5e-5 * np.array([[1, -1]]), "float32", "test")
    assert ok.passed and ok.decisions_equal
    off = parity.compare(k, k + 2e-3 * np.array([[1, -1]]), "float32", "test")
    assert not off.passed and off.max_abs_diff == pytest.approx(2e-3)
    flipped = parity.compare(k, k[:, ::-1], "uint8", "test")
    assert not flipped.passed and not flipped.decisions_equal
    with pytest.raises(ValueError, match="shapes differ"):
        parity.compare(k, k[:2], "float32", "test")
