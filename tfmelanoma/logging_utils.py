"""One logging setup for every CLI, and quieter TensorFlow."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import tempfile
import warnings

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


# TensorFlow's C++ start-up notices, printed while `import tensorflow` loads its shared libraries
# (before absl logging is initialised, so TF_CPP_MIN_LOG_LEVEL does not reach them).
_TF_NOTICES = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)


def quiet_tensorflow() -> None:
    """Silences TensorFlow's C++ and Python log noise; call before TensorFlow is imported.

    oneDNN stays on: turning it off (TF_ENABLE_ONEDNN_OPTS=0) would hide one notice but made CPU
    training 2.8-3.6x slower here, and with it on a seeded run still repeats to the last digit
    (docs/results.md). Its notice and the other start-up notices are filtered out of stderr
    instead, when TensorFlow is the Keras backend (see `import_tensorflow_quietly`).

    TensorFlow's C++ log is off (`TF_CPP_MIN_LOG_LEVEL=3`) unless the caller set the variable:
    on a machine without a GPU its ERROR lines are notices, not errors (`failed call to cuInit`
    from the CUDA build, `NodeDef mentions attribute use_unbounded_threadpool` from tf.data,
    `oneDNN supports DT_BOOL only on platforms with AVX-512`), and a real failure reaches Python
    as an exception anyway. `TF_CPP_MIN_LOG_LEVEL=0` shows everything again.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*np.find_common_type.*")
    # absl resets its logger's level whenever its --verbosity flag is set (at import, when flags
    # are parsed), so the level alone did not hold: TFDS's absl warnings (e.g. "Variant folder
    # ... has no dataset_info.json" while it prepares a dataset) reached the terminal. A filter
    # stays.
    absl_logger = logging.getLogger("absl")
    absl_logger.setLevel(logging.ERROR)
    if _errors_only not in absl_logger.filters:
        absl_logger.addFilter(_errors_only)
    if _keras_backend() == "tensorflow":
        import_tensorflow_quietly()


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _keras_backend() -> str:
    """The backend Keras will pick (`KERAS_BACKEND`, else keras.json), without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its known start-up notices dropped from stderr.

    The notices are written by C++ straight to file descriptor 2, so Python's `sys.stderr` cannot
    filter them; fd 2 is pointed at a temporary file during the import, and every other line
    (warnings, errors) is written back to stderr afterwards, so nothing else is hidden.
    """
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not any(notice in line for notice in _TF_NOTICES):
                    sys.stderr.write(line)
            sys.stderr.flush()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record is emitted, not when it was set up (a
    CLI called twice in one process, e.g. under pytest's capture, would otherwise write to a
    closed stream)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(verbosity: int = 0) -> None:
    """Configures the root logger once for a CLI.

    Args:
        verbosity: 0 = INFO, 1+ = DEBUG, negative = WARNING.
    """
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("tensorflow", "absl", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def get_logger(name: str) -> logging.Logger:
    """A module logger; configuration is left to `setup_logging`."""
    return logging.getLogger(name)
