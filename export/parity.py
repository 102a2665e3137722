"""Keras vs TF.js parity: the same pixels through both, probabilities and decisions compared.

TF.js runs in Node (`webdemo/tools/predict_node.mjs`: tfjs-core + converter + CPU backend, the
packages the page bundles). The browser tests repeat the check end to end in Chromium.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tfmelanoma.errors import ToolMissingError

# Max |P_keras - P_tfjs| allowed per quantisation. float32 differs only by float rounding and
# op order; the quantised bounds cover the measured error of the shipped MeshNet with margin
# (docs/webdemo.md lists the measured values).
PARITY_BOUNDS = {"float32": 1e-4, "float16": 5e-3, "uint8": 5e-2}
WEBDEMO_DIR = Path(__file__).resolve().parents[1] / "webdemo"


@dataclass
class ParityResult:
    """Outcome of one parity check."""

    quantization: str
    bound: float
    n_images: int
    max_abs_diff: float
    decisions_equal: bool
    backend: str
    passed: bool

    def as_dict(self) -> dict:
        """JSON-ready dict (goes into meta.json)."""
        return asdict(self)


def preprocess_file(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Decodes an image file and resizes it as training and the page do
    (`tfmelanoma.data.image_ops`: accurate-IDCT decode, bilinear resize with half-pixel centres,
    no antialiasing, no crop; the page uses `tf.image.resizeBilinear(x, size, false, true)`, the
    same op).

    Returns:
        float32 (H, W, 3) in [0, 255].
    """
    import tensorflow as tf

    from tfmelanoma.data.image_ops import RESIZE_METHOD, decode_tf

    img = decode_tf(tf.io.read_file(str(path)))
    return tf.image.resize(tf.cast(img, tf.float32), size, method=RESIZE_METHOD).numpy()


def parity_inputs(size: tuple[int, int], images: list[Path], n_random: int = 4) -> np.ndarray:
    """The given image files plus seeded random images (off the data distribution on purpose)."""
    rng = np.random.default_rng(0)
    batch = [preprocess_file(p, size) for p in images]
    batch += [rng.uniform(0, 255, (*size, 3)).astype(np.float32) for _ in range(n_random)]
    return np.stack(batch).astype(np.float32)


# What `webdemo/tools/predict_node.mjs` imports (the packages the page bundles).
NODE_PACKAGES = (
    "@tensorflow/tfjs-core",
    "@tensorflow/tfjs-backend-cpu",
    "@tensorflow/tfjs-converter",
)


def check_node(webdemo: Path = WEBDEMO_DIR) -> str:
    """The `node` executable, after checking that the parity script and its packages are there.

    Raises:
        ToolMissingError: no `node` on PATH, or a package of `NODE_PACKAGES` is not installed
            under `<webdemo>/node_modules` (the message gives the `npm ci` command).
    """
    node = shutil.which("node")
    if node is None:
        raise ToolMissingError(
            "the Keras/TF.js parity check needs Node.js (`node` not on PATH); install Node.js "
            ">= 20, or pass --skip-parity"
        )
    webdemo = Path(webdemo)
    script = webdemo / "tools" / "predict_node.mjs"
    if not script.is_file():
        raise ToolMissingError(
            f"the parity check runs {script}, which is missing; pass --webdemo DIR (the web "
            "demo folder) or --skip-parity"
        )
    modules = webdemo / "node_modules"
    missing = [p for p in NODE_PACKAGES if not (modules / p / "package.json").is_file()]
    if missing:
        raise ToolMissingError(
            f"the Keras/TF.js parity check needs {', '.join(missing)} in {modules}: run\n"
            f"npm ci --prefix {webdemo}\n"
            "(or pass --webdemo DIR with node_modules, or --skip-parity)"
        )
    return node


def node_predict(model_dir: Path, x: np.ndarray, webdemo: Path = WEBDEMO_DIR) -> dict:
    """Runs `predict_node.mjs` on `x` and returns its JSON output.

    Raises:
        ToolMissingError: node or webdemo/node_modules missing (`check_node`).
        RuntimeError: the script failed.
    """
    node = check_node(webdemo)
    script = Path(webdemo) / "tools" / "predict_node.mjs"
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "x.f32"
        np.ascontiguousarray(x, dtype="<f4").tofile(inp)
        shape = ",".join(str(d) for d in x.shape)
        proc = subprocess.run(
            [node, str(script), str(model_dir), str(inp), shape],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(
    keras_probs: np.ndarray, tfjs_probs: np.ndarray, quantization: str, backend: str
) -> ParityResult:
    """Compares probabilities and argmax decisions.

    A decision may differ only where Keras's own top-two margin is within the bound (a
    near-tie that any rounding can flip); elsewhere decisions must be equal.
    """
    k = np.asarray(keras_probs, dtype=np.float64)
    t = np.asarray(tfjs_probs, dtype=np.float64)
    if k.shape != t.shape:
        raise ValueError(f"Keras probabilities {k.shape} vs TF.js {t.shape}: shapes differ")
    bound = PARITY_BOUNDS[quantization]
    diff = float(np.max(np.abs(k - t)))
    srt = np.sort(k, axis=1)
    near_tie = (srt[:, -1] - srt[:, -2]) <= 2 * bound
    same = (k.argmax(1) == t.argmax(1)) | near_tie
    return ParityResult(
        quantization=quantization,
        bound=bound,
        n_images=int(k.shape[0]),
        max_abs_diff=diff,
        decisions_equal=bool(same.all()),
        backend=backend,
        passed=bool(diff <= bound and same.all()),
    )


def check_parity(
    model, model_dir: Path, quantization: str, images: list[Path], webdemo: Path = WEBDEMO_DIR
) -> ParityResult:
    """Runs the same inputs through `model` (Keras) and the TF.js model in `model_dir`."""
    _, h, w, _ = model.input_shape
    x = parity_inputs((h, w), images)
    keras_probs = model.predict(x, batch_size=16, verbose=0)
    out = node_predict(model_dir, x, webdemo)
    return compare(
        keras_probs, np.asarray(out["probs"]), quantization, f"tfjs-node {out['backend']}"
    )
