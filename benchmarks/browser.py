"""Web demo benchmark: model size per quantisation, load time and latency per browser backend.

    python benchmarks/browser.py [--runs 50] [--paper-runs 50]

1. Exports the shipped MeshNet (`webdemo/models/meshnet-run/best.keras`) at float32, float16
   and uint8 and reports the size on disk and the Keras/TF.js parity of each.
2. Builds the uncertainty paper's kind of web model (MeshNet, ~1 M parameters, 3.8 MB float32,
   224 px; random weights: only its cost matters) and exports it.
3. In headless Debian Chromium (`benchmarks/browser_bench.mjs`): the demo's load time and median
   per-image latency over `--runs` images per backend (WASM with SIMD, with SIMD + threads (page
   served cross-origin isolated), without SIMD, CPU), then the paper-style page (model reloaded
   for every prediction, nothing disposed) with the same tfjs and backends.

Writes test-artifacts/bench/browser.json and prints a Markdown table (docs/benchmarks.md).
Needs node, `npm ci --prefix webdemo` and /usr/bin/chromium.
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
DEMO_CONFIGS = [
    {"label": "demo, auto backend", "query": ""},
    {"label": "demo, wasm SIMD", "query": "backend=wasm"},
    # (threads and WASM without SIMD: no longer shipped, issue #16)
    {"label": "demo, cpu (plain JS)", "query": "backend=cpu"},
]


def _size(d: Path) -> int:
    return sum(
        p.stat().st_size for p in d.iterdir() if p.name == "model.json" or p.suffix == ".bin"
    )


def export_sizes(keras_path: Path) -> list[dict]:
    """Size on disk and parity of the shipped model at each quantisation."""
    from export import tfjs

    rows = []
    for q in ("float32", "float16", "uint8"):
        d = OUT / f"meshnet-{q}"
        if tfjs.main(["--model", str(keras_path), "--out", str(d), "--quantization", q]) != 0:
            raise SystemExit(f"export at {q} failed its parity check")
        meta = json.loads((d / "meta.json").read_text())
        rows.append(
            {
                "quantization": q,
                "model_bytes": _size(d),
                "model_js_bytes": (d / "model.js").stat().st_size,
                "max_abs_diff": meta["parity"]["max_abs_diff"],
                "params": meta["params"],
            }
        )
    return rows


def paper_model() -> dict:
    """A MeshNet of the paper's web-model size, exported to TF.js float32 for the baseline."""
    from export import convert
    from tfmelanoma.models import create_model

    model = create_model("meshnet", width=102, input_shape=(224, 224, 3))
    d = OUT / "paper_model"
    convert.convert_keras(model, d, "float32")
    return {
        "params": int(model.count_params()),
        "model_bytes": _size(d),
        "url": f"/{d.relative_to(REPO)}/model.json",
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keras", type=Path, default=REPO / "webdemo/models/meshnet-run/best.keras")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--paper-runs", type=int, default=50)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = export_sizes(args.keras)
    paper = paper_model()
    cfg = OUT / "bench_config.json"
    cfg.write_text(
        json.dumps(
            {
                "runs": args.runs,
                "chromium": args.chromium,
                "configs": DEMO_CONFIGS,
                "paper": {
                    "modelUrl": paper["url"],
                    "size": 224,
                    "backends": ["wasm"],
                    "runs": args.paper_runs,
                },
            }
        )
    )
    proc = subprocess.run(
        ["node", str(REPO / "benchmarks" / "browser_bench.mjs"), str(cfg)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        return 1
    timings = json.loads(proc.stdout.strip().splitlines()[-1])
    result = {"sizes": sizes, "paper_model": paper, "timings": timings, "cpus": os.cpu_count()}
    (OUT / "browser.json").write_text(json.dumps(result, indent=1))
    print(
        "| quantisation | model.json + weights | model.js (base64, embedded) | max abs. diff vs Keras |"
    )
    print("|---|---|---|---|")
    for r in sizes:
        print(
            f"| {r['quantization']} | {r['model_bytes'] / 1e3:.0f} kB | {r['model_js_bytes'] / 1e3:.0f} kB | {r['max_abs_diff']:.1e} |"
        )
    print(
        f"\npaper-style model: {paper['params']:,} params, {paper['model_bytes'] / 1e6:.2f} MB float32\n"
    )
    print(
        "| page / backend | backend shown | load time | median per image (end to end) | median inference |"
    )
    print("|---|---|---|---|---|")
    for t in timings:
        if "error" in t:
            print(f"| {t['label']} | error: {t['error'][:80]} | | | |")
            continue
        inf = f"{t['medianInferenceMs']:.1f} ms" if "medianInferenceMs" in t else "–"
        print(
            f"| {t['label']} | {t['backend']} | {t['loadMs']:.0f} ms | {t['medianMs']:.1f} ms | {inf} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
