"""Class weights (against scikit-learn), oversampling, and the paper preset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.class_weight import compute_class_weight

from tfmelanoma.datasets import class_weights, get_preset, list_presets, presets
from tfmelanoma.datasets.sampling import oversample


def test_inverse_weights_match_sklearn_balanced():
    y = np.array([0] * 70 + [1] * 20 + [2] * 10)
    ours = class_weights(y, method="inverse")
    ref = compute_class_weight("balanced", classes=np.arange(3), y=y)
    assert [ours[i] for i in range(3)] == pytest.approx(ref)


def test_effective_number_weights_by_hand():
    y = np.array([0] * 90 + [1] * 10)
    beta = 0.99
    raw = np.array([(1 - beta) / (1 - beta**90), (1 - beta) / (1 - beta**10)])
    expected = raw * 2 / raw.sum()
    got = class_weights(y, method="effective", beta=beta)
    assert [got[0], got[1]] == pytest.approx(expected)
    assert got[1] > got[0]
    # beta = 0: equal weights; absent classes get 0.
    assert class_weights(y, method="effective", beta=0.0, num_classes=3) == pytest.approx(
        {0: 1.0, 1: 1.0, 2: 0.0}
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"method": "median"}, "method"), ({"method": "effective", "beta": 1.0}, "beta")],
)
def test_class_weight_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        class_weights([0, 1], **kwargs)


def test_oversample_keeps_every_row_and_balances():
    frame = pd.DataFrame({"image_id": [f"i{k}" for k in range(13)], "label": [1] * 3 + [0] * 10})
    out = oversample(frame, seed=0)
    assert out["label"].value_counts().to_dict() == {0: 10, 1: 10}
    assert set(out["image_id"]) == set(frame["image_id"])
    assert out.equals(oversample(frame, seed=0))
    assert not out.equals(oversample(frame, seed=1))


def test_paper_preset():
    assert "uncertainty_paper" in list_presets()
    grid = get_preset("uncertainty_paper")
    assert len(grid) == 48 * 4
    assert {s.test for s in grid} == set(presets.PAPER_TEST_SETS)
    assert len({(frozenset(s.train), s.test) for s in grid}) == len(grid)
    everything = set(presets.PAPER_DATASETS.values())
    assert any(set(s.train) == everything for s in grid)
    # Every training set named in the paper's tables is in the grid.
    tables = get_preset("uncertainty_paper_tables")
    assert len(tables) == 16 * 4
    with pytest.raises(KeyError, match="known presets"):
        get_preset("nope")


def test_docs_list_the_preset_combinations():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "datasets.md").read_text()
    section = doc.split("## The uncertainty paper's grid")[1].split("## The label map")[0]
    listed = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for number, letters in zip(cells[0::2], cells[1::2], strict=False):
            if number.isdigit():
                letters = "ABCDEFGHIJ" if "all ten" in letters else re.sub(r"\W", "", letters)
                listed[int(number)] = frozenset(letters)
    expected = {i: frozenset(c) for i, c in enumerate(presets._PAPER_TRAIN_COMBINATIONS, start=1)}
    assert listed == expected
