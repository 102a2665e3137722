"""`export.graph_rewrite`: dilated convolutions come out of the export as one op, same numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from export import convert, graph_rewrite, parity

REPO = Path(__file__).resolve().parents[2]
needs_node = pytest.mark.skipif(
    shutil.which("node") is None
    or not (REPO / "webdemo/node_modules/@tensorflow/tfjs-core").is_dir(),
    reason="needs node and `npm ci --prefix webdemo`",
)


def _dilated_model() -> keras.Model:
    """Sizes not divisible by the dilation (extra padding + crops), depthwise, no bias, VALID."""
    keras.utils.set_random_seed(0)
    x = inp = keras.Input((26, 26, 3), name="image")
    x = keras.layers.Conv2D(4, 3, dilation_rate=4, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(5, 3, dilation_rate=3, padding="valid", use_bias=False)(x)
    x = keras.layers.Conv2D(6, 3, dilation_rate=2, padding="same", activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inp, out)


@pytest.mark.slow
@needs_node
def test_dilated_convs_become_one_op_with_parity(tmp_path):
    model = _dilated_model()
    convert.convert_keras(model, tmp_path, optimise=False)
    before = graph_rewrite.op_counts(json.loads((tmp_path / "model.json").read_text()))
    assert before["SpaceToBatchND"] == 4, before
    stats = convert.optimise_graph(tmp_path)
    mj, data = convert.read_artifacts(tmp_path)
    after = graph_rewrite.op_counts(mj)
    assert stats["dilated_convs_collapsed"] == 4, (stats, after)
    assert not {"SpaceToBatchND", "BatchToSpaceND", "BiasAdd"} & set(after), after
    # every weight the manifest names is there, and nothing else
    specs = [w for g in mj["weightsManifest"] for w in g["weights"]]
    assert sum(graph_rewrite._spec_bytes(s) for s in specs) == len(data)
    names = {n["name"] for n in mj["modelTopology"]["node"]}
    assert {s["name"] for s in specs} <= names
    x = np.random.default_rng(1).uniform(0, 255, (3, 26, 26, 3)).astype("float32")
    out = parity.node_predict(tmp_path, x)
    np.testing.assert_allclose(out["probs"], model.predict(x, verbose=0), atol=1e-5)


def test_padding_name():
    assert graph_rewrite._padding_name(np.zeros((2, 2), int), [3, 3], [4, 4]) == "VALID"
    assert graph_rewrite._padding_name(np.array([[4, 4], [4, 4]]), [3, 3], [4, 4]) == "SAME"
    assert graph_rewrite._padding_name(np.array([[4, 6], [4, 4]]), [3, 3], [4, 4]) is None
