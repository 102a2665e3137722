"""Fixtures shared by tests/ and tfds_builders/*/..._test.py."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# JAX's compilation cache (run.compile_cache=auto) of test runs and their subprocesses goes to a
# temporary folder, not the user's ~/.cache.
os.environ.setdefault("TFMELANOMA_CACHE_DIR", tempfile.mkdtemp(prefix="tfmelanoma-cache-"))

# The Ctrl-C tests (tests/faults, test_first_hour) send SIGINT to the CLIs they start. A test run
# started in the background by a non-interactive shell (`pytest ... &`) inherits SIGINT ignored,
# and so would every CLI it starts, which then never sees the Ctrl-C: give this process Python's
# own handler back, which its children start with as the default action.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO_ROOT = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("TFMELANOMA_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (or $TFMELANOMA_SHARED_DATA); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set TFMELANOMA_SHARED_DATA)")
    return SHARED_DATA


def shared_path(*parts: str) -> Path:
    """A path under the shared data folder, for `pytest.mark.skipif` conditions."""
    return SHARED_DATA.joinpath(*parts)


@pytest.fixture(scope="session")
def sample_array_record(tmp_path_factory) -> Path:
    """A TFDS data dir with the embedded sample prepared as ArrayRecord (the format the TF-free
    pipelines read), once per test session."""
    from tfmelanoma.datasets import get_builder

    path = tmp_path_factory.mktemp("tfds_array_record")
    get_builder("sample", str(path), file_format="array_record")
    return path
