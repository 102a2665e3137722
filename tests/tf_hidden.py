"""A prelude for subprocess scripts that must run as if TensorFlow were not installed."""

HIDE_TENSORFLOW = """
import importlib.abc, sys

class HideTensorFlow(importlib.abc.MetaPathFinder):
    # Delegates to the real finders but never finds `tensorflow`, as if it were not installed.
    def __init__(self, finders):
        self.finders = finders

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            return None
        for finder in self.finders:
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                return spec
        return None

sys.meta_path[:] = [HideTensorFlow(list(sys.meta_path))]
try:
    import tensorflow  # noqa: F401
    raise SystemExit("tensorflow should not be importable here")
except ImportError:
    pass
"""


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
