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
# the submodule to import them from.
_MOVED = {
    "read_indices": "api",
    "DEFAULT_MAX_DISTANCE": "rules",
    "RULES": "rules",
    "normalise_isic_id": "dedup",
    "frame_from_examples": "index",
    "IndexedDataSource": "materialise",
    "PAPER_DATASETS": "presets",
    "oversample": "sampling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None and name in _MOVED:
        import warnings

        module = _MOVED[name]
        warnings.warn(
            f"tfmelanoma.datasets.{name} is not public any more; import it from "
            f"tfmelanoma.datasets.{module}",
            DeprecationWarning,
            stacklevel=2,
        )
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    if name in _EXPORTS:
        globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
