"""Rewrites of a converted TF.js graph model (`model.json` + weights) that make it faster.

Why: Keras 3 calls `tf.nn.convolution` for a dilated `Conv2D`, and TensorFlow builds every
dilated convolution as SpaceToBatchND → Conv2D(VALID, dilation 1) → BatchToSpaceND (its
`_WithSpaceToBatch`, `tensorflow/python/ops/nn_ops.py`), a trick for backends without native
dilation. The SavedModel and the TF.js converter keep it, and in TF.js the two reshuffles cost
far more than the convolution itself (measured: ~64 of 71 ms for MeshNet on WASM SIMD). Every
TF.js backend implements dilated Conv2D / DepthwiseConv2D natively, so the export puts the
one-op form back:

1. `collapse_space_to_batch`: SpaceToBatchND(x, [d, d], P) → Conv2D/DepthwiseConv2D(VALID,
   stride 1) → BatchToSpaceND(·, [d, d], C) becomes one conv with `dilations` d and the padding
   P - C expressed as SAME or VALID (TensorFlow's own decomposition pads for SAME and adds, at
   the end only, what makes the size a multiple of d; the crops take that back).
2. `fuse_bias_activation`: Conv2D/DepthwiseConv2D → BiasAdd (→ Relu / Relu6 / Elu) becomes one
   `_FusedConv2D` / `FusedDepthwiseConv2dNative`, as TensorFlow's grappler does for the
   undilated convolutions (it could not fuse through BatchToSpaceND).

The block-shape, padding and crop constants that no node uses any more are removed from the
topology, the weights manifest and the weight bytes.
"""

from __future__ import annotations

import base64
from collections import Counter

import numpy as np

CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
FUSED = {"Conv2D": "_FusedConv2D", "DepthwiseConv2dNative": "FusedDepthwiseConv2dNative"}
ACTIVATIONS = ("Relu", "Relu6", "Elu")
_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "float16": 2, "uint8": 1, "uint16": 2}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _attr_str(node: dict, key: str) -> str | None:
    val = node.get("attr", {}).get(key, {}).get("s")
    return base64.b64decode(val).decode() if val is not None else None


def _attr_ints(node: dict, key: str) -> list[int] | None:
    val = node.get("attr", {}).get(key, {}).get("list", {}).get("i")
    return [int(v) for v in val] if val is not None else None


def _spec_bytes(spec: dict) -> int:
    n = int(np.prod(spec["shape"], dtype=np.int64))
    q = spec.get("quantization")
    return n * _DTYPE_BYTES[q["dtype"] if q else spec["dtype"]]


class _Graph:
    """model.json's nodes by name plus the weight values (only int32 ones are ever decoded)."""

    def __init__(self, model_json: dict, weights: bytes):
        self.mj = model_json
        self.nodes = {n["name"]: n for n in model_json["modelTopology"]["node"]}
        self.specs = [w for g in model_json["weightsManifest"] for w in g["weights"]]
        self.chunks = {}
        offset = 0
        for spec in self.specs:
            size = _spec_bytes(spec)
            self.chunks[spec["name"]] = weights[offset : offset + size]
            offset += size
        if offset != len(weights):
            raise ValueError(
                f"weights manifest describes {offset} bytes, the shards hold {len(weights)}"
            )

    def src(self, ref: str) -> str:
        """Node name of an input reference ('name', 'name:1', '^name')."""
        return ref.lstrip("^").split(":")[0]

    def consumers(self) -> Counter:
        return Counter(self.src(i) for n in self.nodes.values() for i in n.get("input", []))

    def const_ints(self, name: str) -> np.ndarray | None:
        spec = next((s for s in self.specs if s["name"] == name), None)
        if spec is None or spec["dtype"] != "int32" or "quantization" in spec:
            return None
        return np.frombuffer(self.chunks[name], "<i4").reshape(spec["shape"])

    def finish(self) -> tuple[dict, bytes]:
        """Drops Const nodes nobody reads (and their weights); returns (model_json, weights)."""
        used = self.consumers()
        outputs = {self.src(o["name"]) for o in self._signature_outputs()}
        for name in [n for n, node in self.nodes.items() if node["op"] == "Const"]:
            if used[name] == 0 and name not in outputs:
                del self.nodes[name]
        self.mj["modelTopology"]["node"] = list(self.nodes.values())
        kept = []
        for group in self.mj["weightsManifest"]:
            group["weights"] = [w for w in group["weights"] if w["name"] in self.nodes]
            kept += group["weights"]
        return self.mj, b"".join(self.chunks[w["name"]] for w in kept)

    def _signature_outputs(self) -> list[dict]:
        sig = self.mj.get("signature") or {}
        return list((sig.get("outputs") or {}).values())


def _padding_name(pads: np.ndarray, kernel: list[int], dilation: list[int]) -> str | None:
    """'VALID' / 'SAME' for the spatial paddings [[top, bottom], [left, right]] of a stride-1
    conv with the given kernel and dilation, or None when it is neither."""
    if not pads.any():
        return "VALID"
    for (lo, hi), k, d in zip(pads, kernel, dilation, strict=True):
        total = (k - 1) * d  # SAME, stride 1: output size = input size
        if (lo, hi) != (total // 2, total - total // 2):
            return None
    return "SAME"


def collapse_space_to_batch(g: _Graph) -> int:
    """Step 1 of the module docstring; returns how many convolutions were rewritten."""
    used = g.consumers()
    done = 0
    for b2s in list(g.nodes.values()):
        if b2s["op"] != "BatchToSpaceND":
            continue
        conv = g.nodes.get(g.src(b2s["input"][0]))
        if conv is None or conv["op"] not in CONV_OPS or used[conv["name"]] != 1:
            continue
        s2b = g.nodes.get(g.src(conv["input"][0]))
        if s2b is None or s2b["op"] != "SpaceToBatchND" or used[s2b["name"]] != 1:
            continue
        block = g.const_ints(g.src(s2b["input"][1]))
        block2 = g.const_ints(g.src(b2s["input"][1]))
        pads = g.const_ints(g.src(s2b["input"][2]))
        crops = g.const_ints(g.src(b2s["input"][2]))
        if any(v is None for v in (block, block2, pads, crops)) or block.shape != (2,):
            continue
        if not np.array_equal(block, block2) or crops[:, 0].any():
            continue
        if _attr_str(conv, "padding") != "VALID" or set(_attr_ints(conv, "strides") or [1]) != {1}:
            continue
        if (
            set(_attr_ints(conv, "dilations") or [1]) != {1}
            or _attr_str(conv, "data_format") == "NCHW"
        ):
            continue
        kernel_spec = next((s for s in g.specs if s["name"] == g.src(conv["input"][1])), None)
        if kernel_spec is None:
            continue
        effective = pads.copy()
        effective[:, 1] -= crops[:, 1]  # the crops only remove what was padded at the end
        if (effective < 0).any():
            continue
        padding = _padding_name(effective, kernel_spec["shape"][:2], block.tolist())
        if padding is None:
            continue
        conv["input"][0] = s2b["input"][0]
        conv["attr"]["padding"] = {"s": _b64(padding)}
        conv["attr"]["dilations"] = {"list": {"i": ["1", str(block[0]), str(block[1]), "1"]}}
        # The BatchToSpaceND node keeps its name (its consumers refer to it) and becomes the conv.
        conv["name"], old_name = b2s["name"], conv["name"]
        del g.nodes[s2b["name"]]
        del g.nodes[old_name]
        g.nodes[b2s["name"]] = conv
        done += 1
    return done


def fuse_bias_activation(g: _Graph) -> int:
    """Step 2 of the module docstring; returns how many convolutions were fused."""
    used = g.consumers()
    by_input: dict[str, list[dict]] = {}
    for node in g.nodes.values():
        for ref in node.get("input", []):
            by_input.setdefault(g.src(ref), []).append(node)
    done = 0
    for bias in list(g.nodes.values()):
        if bias["op"] != "BiasAdd":
            continue
        conv = g.nodes.get(g.src(bias["input"][0]))
        if conv is None or conv["op"] not in CONV_OPS or used[conv["name"]] != 1:
            continue
        fused_ops = ["BiasAdd"]
        last = bias
        nxt = by_input.get(bias["name"], [])
        if used[bias["name"]] == 1 and len(nxt) == 1 and nxt[0]["op"] in ACTIVATIONS:
            last = nxt[0]
            fused_ops.append(last["op"])
        attr = dict(conv["attr"])
        attr["fused_ops"] = {"list": {"s": [_b64(op) for op in fused_ops]}}
        attr["num_args"] = {"i": "1"}
        fused = {
            "name": last["name"],
            "op": FUSED[conv["op"]],
            "input": [conv["input"][0], conv["input"][1], bias["input"][1]],
            "device": conv.get("device", ""),
            "attr": attr,
        }
        for name in {conv["name"], bias["name"], last["name"]}:
            del g.nodes[name]
        g.nodes[fused["name"]] = fused
        done += 1
    return done


def optimise(model_json: dict, weights: bytes) -> tuple[dict, bytes, dict]:
    """Runs both rewrites on a TF.js graph model.

    Args:
        model_json: the parsed `model.json` (changed in place).
        weights: the concatenated weight shards, in manifest order.

    Returns:
        (model_json, weights, {"dilated_convs_collapsed": n, "convs_fused": m}).
    """
    g = _Graph(model_json, weights)
    stats = {"dilated_convs_collapsed": collapse_space_to_batch(g)}
    stats["convs_fused"] = fuse_bias_activation(g)
    model_json, weights = g.finish()
    return model_json, weights, stats


def op_counts(model_json: dict) -> Counter:
    """How many nodes of each op the graph has (Const excluded)."""
    return Counter(n["op"] for n in model_json["modelTopology"]["node"] if n["op"] != "Const")


def pooled_feature_node(model_json: dict) -> str | None:
    """The node whose spatial mean feeds the dense head (Mean → MatMul/_FusedMatMul), i.e. the
    last conv feature map that the class-activation map is computed from; None if absent."""
    nodes = {n["name"]: n for n in model_json["modelTopology"]["node"]}
    for node in nodes.values():
        if node["op"] not in ("MatMul", "_FusedMatMul"):
            continue
        mean = nodes.get(node["input"][0].split(":")[0])
        if mean is not None and mean["op"] == "Mean":
            return mean["input"][0].split(":")[0]
    return None
