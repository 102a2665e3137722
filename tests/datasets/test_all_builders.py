"""Every registered builder, prepared from its own dummy_data: label map agrees, merge runs clean.

Prepares each builder's first config (~15 s in all), so it is marked slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow_datasets as tfds

import tfds_builders
from tfmelanoma import labels
from tfmelanoma.datasets import dedup, load_combination, read_index

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[str, list[str]]:
    data_dir = str(tmp_path_factory.mktemp("ds4_all_builders"))
    names = []
    for name in tfds_builders.BUILDERS:
        cls = tfds.builder_cls(name)
        full = f"{name}/{cls.BUILDER_CONFIGS[0].name}" if cls.BUILDER_CONFIGS else name
        dummy = Path(tfds_builders.__file__).parent / name / "dummy_data"
        builder = tfds.builder(full, data_dir=data_dir, file_format="array_record")
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(dummy))
        )
        names.append(full)
    return data_dir, names


def test_every_builder_emits_mapped_labels(prepared):
    data_dir, names = prepared
    assert len(names) == len(tfds_builders.BUILDERS) >= 12
    for full in names:
        dataset = full.split("/")[0]
        index = read_index(full, data_dir, cache=False)
        assert len(index), full
        for row in index.itertuples():
            mapping = labels.map_diagnosis(dataset, row.diagnosis)  # raises when unmapped
            assert row.label == mapping.binary_index, (full, row.image_id)
            assert row.harmonised_diagnosis == mapping.harmonised_index, (full, row.image_id)
            assert row.source == dataset
            assert len(row.phash) == 16 and len(row.sha256) == 64


def test_merge_of_all_builders_leaves_no_leak(prepared):
    data_dir, names = prepared
    test = next(n for n in names if n.startswith("kaggle_fanconic"))
    train = [n for n in names if n != test]
    comb = load_combination(train, test, data_dir=data_dir, val_fraction=0.25)
    assert len(comb.train) and len(comb.test)
    frames = {n: comb.split(n).frame for n in ("train", "validation", "test")}
    for a, b in [("train", "test"), ("validation", "test"), ("train", "validation")]:
        assert dedup.match_pairs(frames[a], frames[b]).empty, (a, b)
    assert set(frames["train"]["dataset"]) <= set(train)
