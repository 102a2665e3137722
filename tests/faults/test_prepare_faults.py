"""Preparing a dataset (`tfmelanoma.datasets.get_builder`): a kill -9 mid-way leaves
nothing that lingers, and two preparations of one dataset do the work once."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.faults.conftest import REPO_ROOT, cli_env, kill_when, snapshot
from tfmelanoma import fsio
from tfmelanoma.datasets.access import get_builder, remove_incomplete

PREPARE = (
    "from tfmelanoma.logging_utils import setup_logging; setup_logging()\n"
    "from tfmelanoma.datasets import get_builder\n"
    "print(get_builder('sample', {data_dir!r}).data_dir)\n"
)


def _prepare_process(data_dir, tmp_path, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PREPARE.format(data_dir=str(data_dir))],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),  # noqa: SIM115  (closed with the process)
        env=cli_env(tmp_path),
        cwd=REPO_ROOT,
    )


def _incomplete(root):
    return sorted(p for p in root.rglob("incomplete.*"))


def test_kill_during_preparation_leaves_nothing_behind(tmp_path):
    data_dir = tmp_path / "tfds"
    dataset = data_dir / "isic_archive"
    proc = _prepare_process(data_dir, tmp_path, tmp_path / "prepare.log")
    kill_when(proc, lambda: bool(_incomplete(dataset)), timeout=300)
    assert _incomplete(dataset), "the kill left no incomplete.* folder to clean up"
    # The next preparation (the killed one's lock died with it) removes the leftovers.
    builder = get_builder("sample", str(data_dir))
    assert builder.is_prepared() and _incomplete(dataset) == []
    assert builder.info.splits["train"].num_examples > 0
    # Leftovers are only TFDS's own temporary names; the prepared data is never touched.
    before = snapshot(dataset)
    assert remove_incomplete(dataset) == [] and snapshot(dataset) == before


def test_second_preparation_waits_and_reuses_the_first(tmp_path):
    import tensorflow_datasets as tfds

    data_dir = tmp_path / "tfds"
    dataset = data_dir / "isic_archive"
    log = tmp_path / "second.log"
    with fsio.folder_lock(dataset, "data dir"):  # a first preparation, in flight
        proc = _prepare_process(data_dir, tmp_path, log)
        deadline = time.monotonic() + 300
        while "waiting for it to finish" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the second preparation never waited"
            time.sleep(0.1)
        # ... which finishes while the second one waits.
        first = tfds.builder("isic_archive/sample", data_dir=str(data_dir))
        first.download_and_prepare(file_format="array_record")
        before = snapshot(dataset)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert f"{dataset}: another process" in text and "preparing isic_archive" not in text
    assert snapshot(dataset) == before  # used as it was: nothing prepared twice or replaced
    assert _incomplete(dataset) == []
