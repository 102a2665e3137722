"""TFDS builders for the skin-lesion datasets used by tfmelanoma.

`import tfds_builders` registers every builder with TFDS, so that
`tfds.load("isic2017", data_dir=..., download_and_prepare_kwargs=...)` and
`tfds.data_source(...)` work from any project. Builder modules are imported here for their
registration side effect; they do not import TensorFlow.
"""

import importlib
import importlib.util
import pkgutil

_BUILDER_SUFFIX = "_dataset_builder"


def _register_all() -> list[str]:
    names = []
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg and not info.name.startswith("_"):
            module = f"{__name__}.{info.name}.{info.name}{_BUILDER_SUFFIX}"
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)
                names.append(info.name)
    return sorted(names)


BUILDERS: list[str] = _register_all()
"""Names of the registered builders."""
