"""Keras model → TF.js graph model (float32 / float16 / uint8 weights) plus the embedded `model.js`.

The conversion is the official TF.js converter's SavedModel path (`keras_model.export` →
`convert_tf_saved_model`), run from a vendored copy of its modules (`export/_vendor`, see the
README there for why: the `tensorflowjs` wheel pins TensorFlow Decision Forests, which
downgrades TensorFlow).
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from pathlib import Path

import keras

QUANTIZATIONS = ("float32", "float16", "uint8")
MODEL_JS = "model.js"


def load_model(path: Path) -> tuple[keras.Model, Path | None]:
    """Loads a `.keras` file, or the `.keras` file of a run folder.

    Args:
        path: a `.keras` file, or a run folder holding `model.keras` or `best.keras`, else
            exactly one `*.keras` at its top level.

    Returns:
        (model, run folder or None).

    Raises:
        FileNotFoundError: the path does not exist or the folder holds no/several `.keras` files.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"--model {path}: no such file or folder (expected a .keras file or a run folder)"
        )
    run_dir = None
    if path.is_dir():
        run_dir = path
        # model.keras (export.train_demo_model), best.keras (python -m tfmelanoma.train).
        preferred = [path / n for n in ("model.keras", "best.keras") if (path / n).is_file()]
        candidates = preferred[:1] or sorted(path.glob("*.keras"))
        if len(candidates) != 1:
            raise FileNotFoundError(
                f"--model {path}: expected model.keras, best.keras or exactly one *.keras file "
                f"in the run folder, found {[str(c) for c in candidates] or 'none'}"
            )
        path = candidates[0]
    elif path.suffix != ".keras":
        raise ValueError(f"--model {path}: expected a .keras file (Keras 3 format) or a run folder")
    import tfmelanoma.models  # noqa: F401  (registers the custom layers for safe_mode loading)

    return keras.saving.load_model(path, safe_mode=True, compile=False), run_dir


def quantization_map(quantization: str) -> dict[str, str] | None:
    """The converter's `quantization_dtype_map` for a quantisation name (all float weights)."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    return None if quantization == "float32" else {quantization: "*"}


def convert_keras(model: keras.Model, out_dir: Path, quantization: str = "float32") -> Path:
    """Converts a Keras model into a TF.js graph model in `out_dir`.

    Args:
        model: the Keras model (float32 RGB [0, 255] in, probabilities out).
        out_dir: created if missing; `model.json` and the weight shards are written there.
        quantization: "float32", "float16" or "uint8" (affine, per tensor).

    Returns:
        Path of `model.json`.
    """
    from export._vendor.tensorflowjs.converters import tf_saved_model_conversion_v2 as conv

    qmap = quantization_map(quantization)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("group*-shard*of*.bin"):
        old.unlink()  # stale shards of an earlier export would otherwise linger beside model.json
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved_model"
        model.export(str(saved), format="tf_saved_model", verbose=False)
        # One shard: the page embeds the weights in one base64 string anyway.
        conv.convert_tf_saved_model(
            str(saved), str(out_dir), quantization_dtype_map=qmap, weight_shard_size_bytes=1 << 30
        )
    model_json = out_dir / "model.json"
    if not model_json.is_file():
        raise RuntimeError(f"the TF.js converter wrote no {model_json}; see its messages above")
    return model_json


def read_artifacts(model_dir: Path) -> tuple[dict, bytes]:
    """`model.json` as a dict and the concatenated weight shards, in manifest order."""
    model_json = json.loads((Path(model_dir) / "model.json").read_text())
    data = b"".join(
        (Path(model_dir) / p).read_bytes()
        for g in model_json["weightsManifest"]
        for p in g["paths"]
    )
    return model_json, data


def weights_digest(model_dir: Path) -> str:
    """sha256 of the weights (first 12 hex digits): part of the model version shown on the page."""
    return hashlib.sha256(read_artifacts(model_dir)[1]).hexdigest()[:12]


def write_model_js(model_dir: Path, meta: dict) -> Path:
    """Writes `model.js`: model.json, weights (base64) and meta.json in one classic script.

    A page opened from file:// cannot fetch its own files, but it can run a `<script src>`; so
    the page gets the whole model from this script and hands it to the worker in memory.
    """
    model_json, data = read_artifacts(model_dir)
    payload = {"meta": meta, "modelJson": model_json, "weights": base64.b64encode(data).decode()}
    path = Path(model_dir) / MODEL_JS
    path.write_text(
        "// Generated by `python -m export.tfjs`: the TF.js graph model, its weights and meta.json\n"
        "// in one script so the demo also works opened as a file (no fetch of local files).\n"
        f"self.TFMELANOMA_MODEL = {json.dumps(payload, separators=(',', ':'))};\n"
    )
    return path
