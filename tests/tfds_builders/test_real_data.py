"""Real-data preparation of kaggle_fanconic and isic2017 from ../shared/data (slow).

Prepared at a 64 px long side to keep the suite fast on 2 cores; counts do not depend on the size.
The full-size preparation is measured in `benchmarks/prepare.py`.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.isic2017 import isic2017_dataset_builder as isic2017
from tfds_builders.kaggle_fanconic import kaggle_fanconic_dataset_builder as fanconic

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def _prepare(builder_cls, manual_dir, data_dir, config):
    builder = builder_cls(data_dir=str(data_dir), config=config, file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def test_kaggle_fanconic_exact_split_counts(shared_data, tmp_path):
    config = common.LesionConfig(name="original_64", max_side=64)
    builder = _prepare(fanconic.Builder, shared_data / "kaggle_fanconic", tmp_path, config)
    source = builder.as_data_source()
    counts = {}
    for split in ("train", "test"):
        counts[split] = collections.Counter(
            source[split][i]["diagnosis"].decode() for i in range(len(source[split]))
        )
    assert counts == {
        "train": {"benign": 1440, "malignant": 1197},
        "test": {"benign": 360, "malignant": 300},
    }
    ex = source["test"][0]
    assert ex["source"] == b"kaggle_fanconic"
    assert ex["label"] == (1 if ex["diagnosis"] == b"malignant" else 0)
    assert ex["image"].shape == (64, 64, 3)
    assert builder.info.metadata.get("num_skipped", {}) == {}


def test_isic2017_train_validation(shared_data, tmp_path):
    config = common.LesionConfig(name="segmentation_64", max_side=64, segmentation=True)
    builder = _prepare(isic2017.Builder, shared_data / "isic2017", tmp_path, config)
    assert set(builder.info.splits) == {"train", "validation"}  # no test files in shared data
    source = builder.as_data_source()
    want = {"train": (2000, 374, "Training"), "validation": (150, 30, "Validation")}
    for split, (n, n_melanoma, stem) in want.items():
        examples = [source[split][i] for i in range(len(source[split]))]
        assert len(examples) == n
        # Every mask file belongs to an emitted image, and every image has its mask.
        masks = shared_data / "isic2017" / f"ISIC-2017_{stem}_Part1_GroundTruth"
        mask_ids = {p.name.removesuffix("_segmentation.png") for p in masks.glob("*.png")}
        assert mask_ids == {ex["image_id"].decode() for ex in examples}
        assert sum(int(ex["label"]) for ex in examples) == n_melanoma
        assert len({ex["image_id"] for ex in examples}) == n
        for ex in examples:  # every image has its mask, at the image's size, binary, non-empty
            assert ex["segmentation_mask"].shape[:2] == ex["image"].shape[:2]
            assert max(ex["image"].shape) == 64
            values = np.unique(ex["segmentation_mask"])
            assert set(values) <= {0, 255} and 255 in values
        ages = [int(ex["age"]) for ex in examples]
        assert min(ages) == common.UNKNOWN_AGE and max(ages) > 0  # "unknown" ages kept as -1
        assert {ex["sex"] for ex in examples} == {b"female", b"male", b""}
