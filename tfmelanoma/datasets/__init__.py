"""Leak-free dataset combinations: de-duplication, patient-grouped splits, sampling, reports.

Quick start::

    from tfmelanoma import datasets

    comb = datasets.load_combination(
        train=["isic2016", "isic2017", "ph2"], test="isic2017", data_dir="~/tensorflow_datasets"
    )
    print(comb.summary())
    train_ds = comb.as_tf_dataset("train", oversample=True, shuffle=True)  # tf.data dicts
    val_src = comb.as_data_source("validation")  # TF-free random access
    weights = comb.class_weights("effective", beta=0.999)

See docs/datasets.md.
"""

from tfmelanoma.datasets.api import Combination, load_combination, load_split, read_indices
from tfmelanoma.datasets.combination import MergeOptions, MergeReport, plan
from tfmelanoma.datasets.dedup import DEFAULT_MAX_DISTANCE, RULES, normalise_isic_id
from tfmelanoma.datasets.index import DatasetNotPreparedError, frame_from_examples, read_index
from tfmelanoma.datasets.materialise import IndexedDataSource, SplitView
from tfmelanoma.datasets.presets import PAPER_DATASETS, get_preset, list_presets
from tfmelanoma.datasets.sampling import class_weights, oversample

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "PAPER_DATASETS",
    "RULES",
    "Combination",
    "DatasetNotPreparedError",
    "IndexedDataSource",
    "MergeOptions",
    "MergeReport",
    "SplitView",
    "class_weights",
    "frame_from_examples",
    "get_preset",
    "list_presets",
    "load_combination",
    "load_split",
    "normalise_isic_id",
    "oversample",
    "plan",
    "read_index",
    "read_indices",
]
