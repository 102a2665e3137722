"""Preludes for subprocess scripts that must run as if TensorFlow (or other packages) were not
installed."""


def hiding(*names: str) -> str:
    """A prelude under which the top-level packages `names` cannot be imported, as if they were
    not installed (and which checks that)."""
    return f"""
import importlib.abc, sys

HIDDEN = {names!r}

class Hide(importlib.abc.MetaPathFinder):
    # Delegates to the real finders but never finds a hidden package, as if it were not installed.
    def __init__(self, finders):
        self.finders = finders

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        for finder in self.finders:
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                return spec
        return None

sys.meta_path[:] = [Hide(list(sys.meta_path))]
for hidden in HIDDEN:
    try:
        __import__(hidden)
        raise SystemExit(hidden + " should not be importable here")
    except ImportError:
        pass
"""


HIDE_TENSORFLOW = hiding("tensorflow")

GPU_HOST = hiding("tensorflow", "imagehash")
"""What the GPU host lacks (../shared/GPU.md): TensorFlow, and `imagehash`, without which the
project's TFDS builders cannot be imported (prepared datasets are read from their folders)."""


def hidden_cli(module: str) -> str:
    """A `python -c` script: `HIDE_TENSORFLOW`, then `<module>.main(sys.argv[1:])`; it prints
    `TF_LOADED <bool>` (whether anything imported TensorFlow after all) and exits with main's code.
    """
    return (
        HIDE_TENSORFLOW
        + f"""
import sys
from {module} import main
rc = main(sys.argv[1:])
print("TF_LOADED", "tensorflow" in sys.modules)
sys.exit(rc)
"""
    )
