"""`python -m tfmelanoma.grid` and `python -m tfmelanoma.segment train`: a second process on the
same `--out`, a file where the folder should be, a full disk mid-save never corrupt what is
there, and each is a clean message."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from tests.faults.conftest import assert_clean_error, cli_env, run_cli, snapshot
from tfmelanoma import fsio, grid, segment


def call(main, argv, capsys) -> subprocess.CompletedProcess:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, captured.out, captured.err)


@pytest.fixture
def grid_out(tmp_path):
    """A grid folder with one finished cell (what a second grid must not disturb)."""
    out = tmp_path / "g"
    out.mkdir()
    grid.append_row(out / "results.csv", {"cell_id": "sample__sample__meshnet", "status": "ok"})
    (out / "summary.md").write_text("# Grid summary\n")
    return out, snapshot(out)


GRID_ARGS = ["--datasets", "sample:sample", "--models", "meshnet", "--config", "smoke"]


def test_second_grid_on_one_folder_is_refused(grid_out, tmp_path):
    out, before = grid_out
    with fsio.folder_lock(out, "grid folder"):  # a first grid, running
        result = run_cli("tfmelanoma.grid", *GRID_ARGS, "--out", out, env=cli_env(tmp_path))
    assert_clean_error(result, grid.PROG, str(out), "another process", "wait for it")
    assert snapshot(out) == before


def test_grid_out_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "g"
    out.write_text("not a folder")
    err = assert_clean_error(
        call(grid.main, [*GRID_ARGS, "--out", out / "sub"], capsys), grid.PROG, "is a file"
    )
    assert str(out) in err and out.read_text() == "not a folder"


def test_grid_on_a_full_disk_keeps_the_results_table(grid_out, capsys, monkeypatch):
    out, before = grid_out

    def fake_cell(cell, out, config, overrides, timeout):
        return {"cell_id": "other", "status": "ok"}

    def full(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(grid, "run_cell", fake_cell)
    monkeypatch.setattr(fsio, "atomic_write_bytes", full)
    argv = ["--datasets", "sample:sample", "--models", "meshnet,tinyvgg", "--out", out]
    assert_clean_error(
        call(grid.main, argv, capsys), grid.PROG, "results.csv", "No space left on device"
    )
    assert snapshot(out) == before
    assert list(pd.read_csv(out / "results.csv")["cell_id"]) == ["sample__sample__meshnet"]


def _seg_argv(data, out):
    return [
        "train", "--model", "unet", "--data", "folder", "--images", data / "images",
        "--masks", data / "masks", "--image-size", "16", "--base-filters", "2", "--depth", "2",
        "--batch-size", "2", "--epochs", "1", "--val-split", "", "--out", out,
    ]  # fmt: skip


@pytest.fixture
def seg_run(tmp_path):
    """A finished segmentation run folder (its model.keras must survive every fault)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.keras").write_bytes(b"the trained model")
    (out / "config.json").write_text("{}\n")
    return out, snapshot(out)


def test_second_segment_train_on_one_folder_is_refused(seg_data, seg_run, capsys):
    out, before = seg_run
    argv = [*_seg_argv(seg_data, out), "--overwrite"]
    with fsio.folder_lock(out, "segmentation run folder"):  # another training writing there
        assert_clean_error(
            call(segment.main, argv, capsys), segment.PROG, str(out), "another process"
        )
    assert snapshot(out) == before


def test_segment_train_full_disk_while_saving_keeps_the_old_model(
    seg_data, seg_run, capsys, monkeypatch
):
    import keras

    out, before = seg_run

    def full(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a model")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(keras.Model, "save", full)
    argv = [*_seg_argv(seg_data, out), "--overwrite"]
    assert_clean_error(call(segment.main, argv, capsys), segment.PROG, "No space left on device")
    assert (out / "model.keras").read_bytes() == b"the trained model"
    assert not [p for p in out.iterdir() if "keras" in p.name and p.name != "model.keras"]
    assert {p: h for p, h in snapshot(out).items() if p == "model.keras"} == {
        "model.keras": before["model.keras"]
    }


def test_segment_train_writes_its_model_atomically(seg_data, tmp_path, capsys):
    out = tmp_path / "fresh"
    assert call(segment.main, _seg_argv(seg_data, out), capsys).returncode == 0
    assert (out / "model.keras").is_file() and (out / "summary.json").is_file()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".lock"]
    from tfmelanoma.models.loading import load_model

    assert load_model(out / "model.keras").output_shape[1:3] == (16, 16)


def test_segment_out_that_is_a_file(seg_data, tmp_path, capsys):
    out = tmp_path / "run"
    out.write_text("not a folder")
    argv = _seg_argv(seg_data, out)
    assert_clean_error(call(segment.main, argv, capsys), segment.PROG, str(out), "is a file")
    assert out.read_text() == "not a folder"


def test_segment_predict_with_a_truncated_model(tmp_path, capsys):
    cut = tmp_path / "cut.keras"
    cut.write_bytes(b"PK\x03\x04")
    argv = ["predict", "--model", cut, "--images", tmp_path, "--out", tmp_path / "masks"]
    assert_clean_error(
        call(segment.main, argv, capsys),
        segment.PROG,
        f"{cut}: not a readable .keras model (truncated or corrupt",
    )
    assert not (tmp_path / "masks").exists()


def test_segment_predict_into_a_non_empty_folder_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "masks"
    out.mkdir()
    (out / "ISIC_0000001.png").write_bytes(b"a mask from an earlier run")
    before = snapshot(out)
    argv = ["predict", "--model", tmp_path / "m.keras", "--images", tmp_path, "--out", out]
    assert_clean_error(
        call(segment.main, argv, capsys), segment.PROG, f"--out {out} is not empty", "--overwrite"
    )
    argv = ["evaluate", "--model", tmp_path / "m.keras", "--data", "folder", "--out", out]
    assert_clean_error(call(segment.main, argv, capsys), segment.PROG, "--overwrite")
    assert snapshot(out) == before
