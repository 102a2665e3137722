"""`registered_builders` under loader threads on a host where `tfds_builders` cannot be imported
(the GPU host has no `imagehash`): every thread gets None, the import is tried once."""

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
