"""`datasets.access` on a host without the project's builders (the GPU host has no `imagehash`):
`registered_builders` under loader threads (every thread gets None, the import is tried once) and
`data_dir_root` of a builder TFDS reads from its files."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tfmelanoma.datasets import access


class _SlowFailingImport:
    """A meta-path finder whose `tfds_builders` module runs slowly, then fails as a missing
    dependency does, leaving the half-run module in `sys.modules` while it runs."""

    def __init__(self):
        self.attempts = 0
        self.lock = threading.Lock()

    def find_spec(self, name, path=None, target=None):
        if name != "tfds_builders":
            return None
        import importlib.util

        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        with self.lock:
            self.attempts += 1
        time.sleep(0.05)  # the builders' imports, during which another thread may look
        raise ImportError("No module named 'imagehash'")


@pytest.fixture
def failing_builders(monkeypatch):
    finder = _SlowFailingImport()
    monkeypatch.delitem(sys.modules, "tfds_builders", raising=False)
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    monkeypatch.setattr(access, "_builders", [])
    return finder


def test_concurrent_callers_all_get_none_and_the_import_is_tried_once(failing_builders):
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: access.registered_builders(), range(64)))
    assert results == [None] * 64
    assert failing_builders.attempts == 1


def test_importable_builders_are_listed_once_imported(monkeypatch):
    monkeypatch.setattr(access, "_builders", [])
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: access.registered_builders(), range(16)))
    import tfds_builders

    assert all(r is tfds_builders.BUILDERS for r in results)
    assert "isic2017" in results[0] and "kaggle_fanconic" in results[0]


def test_data_dir_root_of_a_builder_read_from_its_files(tmp_path):
    """Without the project's builders TFDS reads a prepared dataset as a `ReadOnlyBuilder`, whose
    own `data_dir_root` is the version folder: `data_dir_root` gives the data dir, under which
    `tfds.data_source` finds the dataset again by name."""
    import tensorflow_datasets as tfds

    prepared = access.get_builder("sample", tmp_path, file_format="array_record")
    assert access.data_dir_root(prepared) == str(tmp_path)
    read_only = tfds.builder_from_directory(str(prepared.data_dir))
    assert type(read_only).__name__ == "ReadOnlyBuilder"
    assert str(read_only.data_dir_root) != str(tmp_path)  # TFDS's answer, the reason for this
    root = access.data_dir_root(read_only)
    assert root == str(tmp_path)
    source = tfds.data_source(
        access.builder_name("sample"), split="train", data_dir=root, download=False
    )
    assert len(source) == prepared.info.splits["train"].num_examples > 0
