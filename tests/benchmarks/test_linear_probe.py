"""benchmarks/linear_probe.py: the probe's C is chosen on validation, never on test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "linear_probe.py"


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("linear_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_probe_picks_c_by_validation_auc(probe):
    rng = np.random.default_rng(0)
    w = rng.normal(size=16)

    def sample(n):
        x = rng.normal(size=(n, 16))
        return x, (x @ w + rng.normal(scale=2.0, size=n) > 0).astype(int)

    (tx, ty), (vx, vy) = sample(200), sample(100)
    predict, table = probe.fit_probe(tx, ty, vx, vy, grid=(1e-4, 1.0))
    aucs = {row["C"]: row["val_auc"] for row in table[:-1]}
    assert table[-1]["chosen_C"] == max(aucs, key=aucs.get)
    p = predict(vx)
    assert p.shape == (100, 2) and np.allclose(p.sum(1), 1)
    assert max(aucs.values()) > 0.8
