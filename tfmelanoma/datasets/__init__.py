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

from __future__ import annotations

import importlib

# Public name -> submodule. Imported on first use (PEP 562), so `python -m tfmelanoma.datasets
# --help` and `import tfmelanoma.datasets.rules` stay free of pandas, scikit-learn and TensorFlow.
_EXPORTS = {
    "Combination": "api",
    "load_combination": "api",
    "load_split": "api",
    "read_indices": "api",
    "MergeOptions": "combination",
    "MergeReport": "combination",
    "plan": "combination",
    "DEFAULT_MAX_DISTANCE": "rules",
    "RULES": "rules",
    "normalise_isic_id": "dedup",
    "DatasetNotPreparedError": "index",
    "frame_from_examples": "index",
    "read_index": "index",
    "IndexedDataSource": "materialise",
    "SplitView": "materialise",
    "PAPER_DATASETS": "presets",
    "get_preset": "presets",
    "list_presets": "presets",
    "class_weights": "sampling",
    "oversample": "sampling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
