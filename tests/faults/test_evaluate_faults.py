"""`python -m tfmelanoma.evaluate`: an existing report, a truncated model and a second writer
never cost the report already in `--out`."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.faults.conftest import assert_clean_error, snapshot
from tfmelanoma import evaluate, fsio

PROG = evaluate.PROG


def call(argv, capsys) -> subprocess.CompletedProcess:
    code = evaluate.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, captured.out, captured.err)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A 16 px model, 8 test images in class folders, and a finished report."""
    import keras

    root = tmp_path_factory.mktemp("evaluate")
    inp = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inp))
    keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x)).save(root / "m.keras")
    rng = np.random.default_rng(0)
    for folder in ("non_melanoma", "melanoma"):
        (root / "test" / folder).mkdir(parents=True)
        for i in range(4):
            arr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / "test" / folder / f"{folder}_{i}.png")
    base = ["--images-dir", root / "test", "--no-val", "--bootstrap", "0"]
    assert (
        evaluate.main(
            [str(a) for a in ["--model", root / "m.keras", *base, "--out", root / "report"]]
        )
        == 0
    )
    return root, base


@pytest.fixture
def report(setup, tmp_path):
    import shutil

    root, _ = setup
    out = tmp_path / "report"
    shutil.copytree(root / "report", out)
    return out, snapshot(out)


def test_existing_report_is_refused_without_overwrite(setup, report, capsys):
    root, base = setup
    out, before = report
    argv = ["--model", root / "m.keras", *base, "--out", out]
    assert_clean_error(call(argv, capsys), PROG, str(out), "not empty", "--overwrite")
    assert snapshot(out) == before
    assert call([*argv, "--overwrite"], capsys).returncode == 0
    assert set(snapshot(out)) == set(before)


def test_out_that_is_a_file_is_refused(setup, tmp_path, capsys):
    root, base = setup
    out = tmp_path / "report"
    out.write_text("keep me")
    argv = ["--model", root / "m.keras", *base, "--out", out, "--overwrite"]
    assert_clean_error(call(argv, capsys), PROG, str(out), "is a file")
    assert out.read_text() == "keep me"


def test_truncated_model_names_the_file(setup, report, tmp_path, capsys):
    root, base = setup
    out, before = report
    data = (root / "m.keras").read_bytes()
    for name, cut in (("half.keras", data[: len(data) // 2]), ("empty.keras", b"")):
        path = tmp_path / name
        path.write_bytes(cut)
        argv = ["--model", path, *base, "--out", out, "--overwrite"]
        err = assert_clean_error(
            call(argv, capsys), PROG, f"{path}: not a readable .keras model (truncated or corrupt"
        )
        assert "File not found" not in err
    assert snapshot(out) == before
    # a corrupted byte inside a complete archive: the CRC check names it
    damaged = bytearray(data)
    middle = len(damaged) // 3
    damaged[middle : middle + 64] = bytes(b ^ 0xFF for b in damaged[middle : middle + 64])
    (tmp_path / "damaged.keras").write_bytes(bytes(damaged))
    argv = ["--model", tmp_path / "damaged.keras", *base, "--out", tmp_path / "new"]
    assert_clean_error(call(argv, capsys), PROG, "damaged.keras: not a readable .keras model")
    assert not (tmp_path / "new").exists()


def test_second_writer_is_refused_and_the_report_kept(setup, report, capsys):
    root, base = setup
    out, before = report
    argv = ["--model", root / "m.keras", *base, "--out", out, "--overwrite"]
    with fsio.folder_lock(out, "report folder"):  # another evaluation writing there
        assert_clean_error(call(argv, capsys), PROG, str(out), "another process", "wait for it")
    assert snapshot(out) == before


def test_read_only_report_folder_is_a_clean_error(setup, tmp_path, capsys, monkeypatch):
    from tfmelanoma.evaluation import report

    root, base = setup

    def read_only(path, text):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(report, "atomic_write_text", read_only)
    argv = ["--model", root / "m.keras", *base, "--out", tmp_path / "ro"]
    assert_clean_error(call(argv, capsys), PROG, "report.md", "Read-only file system")


def test_every_bad_image_in_images_dir_is_named_in_one_message(setup, tmp_path, capsys):
    import io
    import shutil

    root, _ = setup
    images = tmp_path / "test"
    shutil.copytree(root / "test", images)
    (images / "melanoma" / "empty.jpg").write_bytes(b"")
    (images / "melanoma" / "notes.png").write_text("not an image")
    jpeg = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(jpeg, "JPEG")
    (images / "non_melanoma" / "cut.jpg").write_bytes(jpeg.getvalue()[:200])  # truncated
    out = tmp_path / "report"
    argv = ["--model", root / "m.keras", "--images-dir", images, "--no-val", "--out", out]
    err = assert_clean_error(
        call(argv, capsys),
        PROG,
        "3 unreadable image file(s)",
        f"{images / 'melanoma' / 'empty.jpg'}: empty file (0 bytes)",
        f"{images / 'melanoma' / 'notes.png'}: not an image file",
        f"{images / 'non_melanoma' / 'cut.jpg'}: truncated or corrupt image",
    )
    assert "BytesIO" not in err and "InvalidArgumentError" not in err
    assert not out.exists()  # nothing written for a run that could not start
