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
    builder = datasets.get_builder("sample", "~/tensorflow_datasets")  # prepared TFDS builder

See docs/datasets.md.
"""

from __future__ import annotations

import importlib

# Public name -> submodule: what a user of another project needs. Imported on first use (PEP
# 562), so `python -m tfmelanoma.datasets --help` and `import tfmelanoma.datasets.rules` stay free
# of pandas, scikit-learn and TensorFlow. Everything else is imported from its submodule
# (`tfmelanoma.datasets.index.read_indices`, `.dedup.normalise_isic_id`, `.rules.RULES`, ...).
_EXPORTS = {
    "get_builder": "access",
    "Combination": "api",
    "load_combination": "api",
    "load_split": "api",
    "MergeOptions": "combination",
    "MergeReport": "combination",
    "plan": "combination",
    "read_index": "index",
    "SplitView": "materialise",
    "get_preset": "presets",
    "list_presets": "presets",
    "class_weights": "sampling",
}

# Names this package exported before its API was trimmed: still resolved, with a warning naming
# the module to import them from.
_MOVED = {
    "read_indices": f"{__name__}.api",
    "DEFAULT_MAX_DISTANCE": f"{__name__}.rules",
    "RULES": f"{__name__}.rules",
    "normalise_isic_id": f"{__name__}.dedup",
    "frame_from_examples": f"{__name__}.index",
    "IndexedDataSource": f"{__name__}.materialise",
    "PAPER_DATASETS": f"{__name__}.presets",
    "oversample": f"{__name__}.sampling",
    "DatasetNotPreparedError": "tfmelanoma.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    if name in _MOVED:
        import warnings

        warnings.warn(
            f"tfmelanoma.datasets.{name} is not public any more; import it from {_MOVED[name]}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
