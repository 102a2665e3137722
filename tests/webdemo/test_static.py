"""The web demo's files: offline by construction, consistent with their sources, same formulas.

Fast checks, no browser: the CSP and every referenced file are local, the committed tfjs bundle
matches node_modules, the embedded gallery/model equal their files, and decision.js computes
the entropy and temperature scaling exactly like `tfmelanoma.evaluation`.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.webdemo.page_files import assigned_json

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "webdemo"
HAVE_NODE = shutil.which("node") is not None
HAVE_MODULES = (WEB / "node_modules" / "@tensorflow" / "tfjs-core").is_dir()


def test_csp_forbids_other_origins():
    html = (WEB / "index.html").read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'none'"
    for name, value in directives.items():
        # only 'self', 'none', the wasm keyword and page-made blob:/mediastream: URLs
        for source in value.split():
            assert source in {"'self'", "'none'", "'wasm-unsafe-eval'", "blob:", "mediastream:"}, (
                name,
                source,
            )
    assert "http://" not in html.replace("http-equiv", "") and "https://" not in html


def test_every_referenced_file_is_local_and_present():
    html = (WEB / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs, "index.html references no scripts"
    for ref in refs:
        assert "://" not in ref and not ref.startswith("//"), ref
        assert (WEB / ref).is_file(), f"index.html references missing {ref}"
    for js in ("app.js", "worker.js", "decision.js"):
        text = (WEB / js).read_text()
        assert not re.search(r"https?://", text), f"{js} mentions a URL"
        assert "importScripts" not in text and "fetch(" not in text.replace("platform.fetch", ""), (
            js
        )


@pytest.mark.skipif(
    not (HAVE_NODE and HAVE_MODULES), reason="needs node and `npm ci --prefix webdemo`"
)
def test_committed_tfjs_bundle_matches_node_modules():
    proc = subprocess.run(
        ["node", str(WEB / "build.mjs"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert (WEB / "vendor" / "LICENSE-tfjs").is_file()


def test_bundle_ships_only_what_the_page_can_use():
    """WASM SIMD + CPU in the bundle; WebGL apart (loaded only where it can run); no WebGPU,
    no threaded or non-SIMD WASM (issue #16: 3.1 MB before)."""
    wasm = assigned_json(WEB / "vendor" / "tfjs-bundle.js", "TFJS_WASM")
    assert set(wasm) == {"tfjs-backend-wasm-simd.wasm"}
    bundle = (WEB / "vendor" / "tfjs-bundle.js").read_text()
    assert "tf-backend-webgpu" not in bundle and "tf-backend-webgl" not in bundle
    assert (WEB / "vendor" / "tfjs-bundle.js").stat().st_size < 1_500_000
    assert "TFJS_WEBGL_SOURCE" in (WEB / "vendor" / "tfjs-webgl.js").read_text()


def test_gallery_embeds_its_cc0_files():
    items = assigned_json(WEB / "gallery" / "gallery.js", "TFMELANOMA_GALLERY")
    assert len(items) >= 4
    assert {i["benign_malignant"] for i in items} == {"benign", "malignant"}
    for item in items:
        assert base64.b64decode(item["jpeg"]) == (WEB / "gallery" / item["file"]).read_bytes()
    assert "CC0" in (WEB / "gallery" / "ATTRIBUTION.txt").read_text()
    assert "CC0 1.0 Universal" in (WEB / "gallery" / "LICENSE.txt").read_text()


def test_shipped_model_is_small_and_embedded_consistently():
    d = WEB / "models" / "meshnet"
    meta = json.loads((d / "meta.json").read_text())
    payload = assigned_json(d / "model.js", "TFMELANOMA_MODEL")
    assert payload["meta"] == meta
    assert payload["modelJson"] == json.loads((d / "model.json").read_text())
    weights = b"".join(
        (d / p).read_bytes() for g in payload["modelJson"]["weightsManifest"] for p in g["paths"]
    )
    assert base64.b64decode(payload["weights"]) == weights
    assert (d / "model.js").stat().st_size < 1_000_000
    assert meta["class_names"] == ["non_melanoma", "melanoma"]
    assert meta["parity"]["passed"] and meta["parity"]["max_abs_diff"] <= 1e-4
    assert (
        0 < meta["uncertainty"]["entropy_threshold"] <= 1 and meta["uncertainty"]["temperature"] > 0
    )


@pytest.mark.skipif(not HAVE_NODE, reason="needs node")
def test_decision_js_matches_tfmelanoma_evaluation(tmp_path):
    from tfmelanoma.evaluation.calibration import apply_temperature
    from tfmelanoma.evaluation.uncertainty import normalized_entropy

    rng = np.random.default_rng(0)
    probs = rng.dirichlet([0.5, 0.5], size=200)
    probs[0] = [1.0, 0.0]  # 0 log 0
    probs[1] = [0.5, 0.5]  # maximum entropy
    meta = {
        "class_names": ["non_melanoma", "melanoma"],
        "positive_class": "melanoma",
        "uncertainty": {
            "entropy_threshold": 0.6,
            "temperature": 1.7,
            "reject_on_calibrated": False,
        },
    }
    script = (
        f"const d = require({json.dumps(str(WEB / 'decision.js'))});"
        f"const probs = {json.dumps(probs.tolist())}; const meta = {json.dumps(meta)};"
        "console.log(JSON.stringify(probs.map((p) => d.decide(p, meta))));"
    )
    out = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, timeout=60, check=True
    )
    js = json.loads(out.stdout)
    h = normalized_entropy(probs)
    cal = apply_temperature(probs, 1.7)
    np.testing.assert_allclose([r["entropy"] for r in js], h, atol=1e-12)
    np.testing.assert_allclose([r["calibrated"] for r in js], cal, atol=1e-12)
    np.testing.assert_allclose([r["pMelanoma"] for r in js], cal[:, 1], atol=1e-12)
    expected = np.where(
        h > 0.6, "uncertain", np.where(probs[:, 1] > probs[:, 0], "melanoma", "non_melanoma")
    )
    assert [r["decision"] for r in js] == expected.tolist()
    assert js[1]["decision"] == "uncertain" and js[0]["decision"] == "non_melanoma"
