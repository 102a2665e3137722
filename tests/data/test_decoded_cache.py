"""The decoded-image cache: built once, reused, rebuilt when stale or truncated, never half-used."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tfmelanoma.data import decoded_cache, image_ops

FIELDS = {"image": image_ops.resize_np}


class CountingSource(list):
    """Example dicts that count how often they are read."""

    reads = 0

    def __getitem__(self, i):
        self.reads += 1
        return super().__getitem__(i)


def _source(n=5) -> CountingSource:
    rng = np.random.default_rng(0)
    sizes = [(30, 40), (50, 50), (24, 36), (40, 30), (33, 33)]
    return CountingSource(
        {"image": rng.integers(0, 256, (*sizes[i % 5], 3)).astype(np.uint8)} for i in range(n)
    )


def _open(source, tmp_path, fingerprint="f" * 16, size=16):
    return decoded_cache.open_or_build(
        source, fingerprint=fingerprint, size=size, cache_dir=tmp_path, fields=FIELDS,
        progress=False,
    )  # fmt: skip


def test_built_once_with_the_pixel_contract_resize(tmp_path):
    source = _source()
    cache = _open(source, tmp_path)
    assert cache.images.shape == (5, 16, 16, 3) and cache.images.dtype == np.uint8
    assert isinstance(cache.images, np.memmap)
    for stored, example in zip(cache.images, source, strict=True):
        expected = np.rint(image_ops.resize_np(example["image"], 16))
        np.testing.assert_array_equal(stored, expected)
    reads = source.reads
    again = _open(source, tmp_path)
    assert source.reads == reads  # opened, not rebuilt
    np.testing.assert_array_equal(again.images, cache.images)
    assert not list(cache.folder.glob("*.tmp*"))


@pytest.mark.parametrize("damage", ["truncated", "other_count", "no_meta", "garbled_meta"])
def test_stale_or_damaged_cache_is_rebuilt(tmp_path, damage):
    source = _source()
    folder = _open(source, tmp_path).folder
    meta = folder / "meta.json"
    if damage == "truncated":  # e.g. a disk that filled up under an old, non-atomic writer
        data = (folder / "image.npy").read_bytes()
        (folder / "image.npy").write_bytes(data[: len(data) // 2])
    elif damage == "other_count":
        meta.write_text(json.dumps(dict(json.loads(meta.read_text()), count=4)))
    elif damage == "no_meta":  # a build killed before its commit point
        meta.unlink()
    else:
        meta.write_text("{not json")
    reads = source.reads
    cache = _open(source, tmp_path)
    assert source.reads > reads  # rebuilt
    assert cache.images.shape == (5, 16, 16, 3)


def test_fingerprint_follows_rows_and_content():
    frame = pd.DataFrame(
        {"dataset": ["a", "a"], "split": ["train"] * 2, "position": [0, 1],
         "image_id": ["x", "y"], "sha256": ["1", "2"], "label": [0, 1]}
    )  # fmt: skip
    base = decoded_cache.frame_fingerprint(frame)
    assert decoded_cache.frame_fingerprint(frame.copy()) == base
    assert decoded_cache.frame_fingerprint(frame.iloc[::-1]) != base  # order matters
    assert decoded_cache.frame_fingerprint(frame.assign(sha256=["1", "3"])) != base
    assert decoded_cache.frame_fingerprint(frame, "other resize") != base
    assert decoded_cache.frame_fingerprint(frame.assign(label=[1, 1])) == base  # pixels only


def test_second_builder_waits_for_the_first(tmp_path):
    """A process finding the cache folder locked waits, then opens what the first one built."""
    import threading

    from tfmelanoma.fsio import folder_lock

    source = _source()
    folder = tmp_path / ("f" * 16 + "-16px")
    result = {}
    with folder_lock(folder, "decoded-image cache"):
        thread = threading.Thread(target=lambda: result.update(cache=_open(source, tmp_path)))
        thread.start()
        thread.join(1.0)
        assert thread.is_alive()  # blocked on the lock
    thread.join(30)
    assert result["cache"].images.shape == (5, 16, 16, 3)
