"""The toolkit's error types: library code raises these, only the CLIs turn them into messages.

Every error's message is written for the person at the terminal: it names the file or key and
says what was expected or what to do. The CLIs print the whole message (every line: a list of
missing files, the command to run) and exit 2; tracebacks are for bugs, not for bad input.
"""

from __future__ import annotations


class TfmelanomaError(Exception):
    """Base class: bad input, a busy folder, a run that cannot continue, etc."""


class RunFolderError(TfmelanomaError, FileExistsError):
    """A run or output folder holds something that this command would replace or mix with."""


class FolderBusyError(TfmelanomaError):
    """Another process holds the folder's lock (two writers would corrupt each other's files)."""


class DivergedError(TfmelanomaError):
    """Training produced a non-finite loss or weights; the last good checkpoint is kept."""


class LabelError(TfmelanomaError, ValueError):
    """A label or mask that is not one of the expected values (file, row and value named)."""


class UnsafePathError(TfmelanomaError, ValueError):
    """A path from a data file (CSV id, archive member) points outside its root folder."""


class ModelFileError(TfmelanomaError, ValueError):
    """A `.keras` file that cannot be read (truncated, corrupt, not Keras 3); the path is named."""


class ToolMissingError(TfmelanomaError, RuntimeError):
    """An external tool or package a command needs is not installed; the message says how."""


class ImageReadError(TfmelanomaError, ValueError):
    """An image file that is missing, empty, truncated or not an image; the message names it."""


class DatasetError(TfmelanomaError, ValueError):
    """A dataset that cannot be used as asked: an unknown name, one prepared in another file
    format than the reader needs, a missing manual download. The message names the dataset, the
    data dir and what to do (`tfmelanoma.datasets.get_builder` raises it)."""


class DatasetNotPreparedError(DatasetError, FileNotFoundError):
    """A dataset that is not prepared in the data dir and cannot be prepared here (no manual
    download given, or no TensorFlow to prepare with); the message says how to prepare it."""
