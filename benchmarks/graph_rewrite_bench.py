"""Dilated-convolution graph rewrite: WASM SIMD inference time before and after, same run.

    python benchmarks/graph_rewrite_bench.py [--runs 200] [--model webdemo/models/meshnet-run/best.keras]

Exports the model twice (`export.convert.convert_keras` with `optimise=False`: the converter's
SpaceToBatchND → Conv2D → BatchToSpaceND graph; with `optimise=True`: `export.graph_rewrite`),
then in headless Debian Chromium (`benchmarks/graph_rewrite_bench.mjs`, the demo's own tfjs
bundle, WASM SIMD, one thread) runs both on the same random input, alternating old and new each
iteration, and reports the median `predict` + read-back time of each, their largest output
difference, the load average, the commit and the command. Writes
test-artifacts/bench/graph_rewrite.json. Needs node, `npm ci --prefix webdemo`, /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "test-artifacts" / "bench"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "webdemo/models/meshnet-run/best.keras")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args(argv)
    import keras

    from export import convert, graph_rewrite, tfjs

    model = keras.saving.load_model(args.model, safe_mode=True, compile=False)
    model, _ = tfjs.fold_for_export(model)  # as `python -m export.tfjs` exports it
    models, ops = {}, {}
    for label, optimise in (("old", False), ("new", True)):
        d = OUT / f"graph-{label}"
        convert.convert_keras(model, d, optimise=optimise)
        models[label] = str((d / "model.json").relative_to(REPO))
        ops[label] = dict(graph_rewrite.op_counts(json.loads((d / "model.json").read_text())))
    cfg = OUT / "graph_rewrite_config.json"
    cfg.write_text(json.dumps({"models": models, "runs": args.runs, "warmup": args.warmup}))
    load_before = os.getloadavg()
    proc = subprocess.run(
        ["node", str(REPO / "benchmarks" / "graph_rewrite_bench.mjs"), str(cfg)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    result = {
        "command": "python benchmarks/graph_rewrite_bench.py " + " ".join(argv or sys.argv[1:]),
        "commit": commit,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "ops": ops,
        **{k: v for k, v in out.items() if k != "times"},
    }
    (OUT / "graph_rewrite.json").write_text(json.dumps(result | {"times": out["times"]}, indent=1))
    print(json.dumps(result, indent=1))
    print(
        f"\n| export | median inference (WASM SIMD) |\n|---|---|\n"
        f"| converter graph (SpaceToBatchND/BatchToSpaceND) | {out['medianMs']['old']:.1f} ms |\n"
        f"| rewritten (one dilated conv) | {out['medianMs']['new']:.1f} ms |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
