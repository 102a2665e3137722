"""`python -m export.tfjs`: a bad model, an existing export, a failed conversion, missing Node
packages and a second writer never cost the export already in `--out`."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from export import convert, tfjs
from tests.faults.conftest import assert_clean_error, cli_env, run_cli, snapshot
from tfmelanoma import fsio

PROG = tfjs.PROG
TINY = {"input_shape": (32, 32, 3), "width": 4, "dilations": (1, 2)}


def call(main, argv, capsys) -> subprocess.CompletedProcess:
    """`main(argv)` in this process, shaped like `run_cli`'s result for `assert_clean_error`."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, captured.out, captured.err)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import keras

    from tfmelanoma.models import create_model

    root = tmp_path_factory.mktemp("models")
    create_model("meshnet", **TINY).save(root / "good.keras")
    create_model("meshnet", num_classes=1, **TINY).save(root / "sigmoid.keras")
    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    keras.Model(inp, keras.layers.Dense(2, name="logits")(x)).save(root / "logits.keras")
    return root


@pytest.fixture(scope="module")
def old_export(models, tmp_path_factory):
    """A finished export (the thing that must survive every fault)."""
    out = tmp_path_factory.mktemp("exports") / "meshnet"
    assert (
        tfjs.main(["--model", str(models / "good.keras"), "--out", str(out), "--skip-parity"]) == 0
    )
    return out


@pytest.fixture
def existing(old_export, tmp_path):
    out = tmp_path / "web" / "meshnet"
    shutil.copytree(old_export, out)
    return out, snapshot(out)


def _no_leftovers(out):
    assert sorted(p.name for p in out.parent.iterdir() if p.name != ".lock") == [out.name]


@pytest.mark.parametrize(
    ("model", "needle"),
    [("sigmoid.keras", "one sigmoid output"), ("logits.keras", "not probabilities")],
)
def test_bad_model_output_leaves_the_old_export(models, existing, model, needle, capsys):
    out, before = existing
    argv = ["--model", models / model, "--out", out, "--force", "--skip-parity"]
    assert_clean_error(call(tfjs.main, argv, capsys), PROG, model, needle, "softmax")
    assert snapshot(out) == before
    _no_leftovers(out)


def test_non_empty_out_needs_force(models, existing, capsys):
    out, before = existing
    argv = ["--model", models / "good.keras", "--out", out, "--skip-parity"]
    assert_clean_error(call(tfjs.main, argv, capsys), PROG, str(out), "not empty", "--force")
    assert snapshot(out) == before
    # What an export killed mid-conversion leaves: a hidden sibling, removed by the next one.
    stale = out.parent / f".{out.name}.export-k1ll3d"
    stale.mkdir()
    (stale / "model.json").write_text("{half")
    # --force replaces it, in one swap, with nothing left beside it.
    assert call(tfjs.main, [*argv, "--force"], capsys).returncode == 0
    assert set(snapshot(out)) == set(before)
    _no_leftovers(out)


def test_a_failed_conversion_leaves_the_old_export(models, existing, capsys, monkeypatch):
    out, before = existing

    def disk_full(model, out_dir, quantization):
        (out_dir / "model.json").write_text("{half")
        raise OSError(28, "No space left on device", str(out_dir / "group1-shard1of1.bin"))

    monkeypatch.setattr(convert, "convert_keras", disk_full)
    argv = ["--model", models / "good.keras", "--out", out, "--force", "--skip-parity"]
    assert_clean_error(call(tfjs.main, argv, capsys), PROG, "No space left on device")
    assert snapshot(out) == before
    _no_leftovers(out)


def test_a_failed_swap_puts_the_old_export_back(models, existing, capsys, monkeypatch):
    out, before = existing
    real = tfjs.os.replace

    def replace(src, dst):
        if str(dst) == str(out) and ".export-" in str(src) and not str(src).endswith(".old"):
            raise OSError(30, "Read-only file system", str(dst))
        return real(src, dst)

    monkeypatch.setattr(tfjs.os, "replace", replace)
    argv = ["--model", models / "good.keras", "--out", out, "--force", "--skip-parity"]
    assert_clean_error(call(tfjs.main, argv, capsys), PROG, str(out), "Read-only file system")
    assert snapshot(out) == before
    _no_leftovers(out)


def test_missing_node_packages_say_npm_ci_before_anything_is_written(
    models, existing, tmp_path, capsys
):
    out, before = existing
    webdemo = tmp_path / "webdemo"  # the parity script, but no node_modules
    (webdemo / "tools").mkdir(parents=True)
    shutil.copy(
        tfjs.Path(tfjs.__file__).parents[1] / "webdemo/tools/predict_node.mjs", webdemo / "tools"
    )
    argv = ["--model", models / "good.keras", "--out", out, "--force", "--webdemo", webdemo]
    needle = f"npm ci --prefix {webdemo}" if shutil.which("node") else "Node.js"
    assert_clean_error(call(tfjs.main, argv, capsys), PROG, needle, "--skip-parity")
    assert snapshot(out) == before
    fresh = tmp_path / "fresh"
    argv = ["--model", models / "good.keras", "--out", fresh, "--webdemo", webdemo]
    assert call(tfjs.main, argv, capsys).returncode == 2
    assert not fresh.exists()


def test_second_export_into_a_busy_folder_is_refused(models, existing, tmp_path):
    out, before = existing
    with fsio.folder_lock(out.parent, "folder of exports"):  # another export, in flight
        result = run_cli(
            "export.tfjs",
            "--model", models / "good.keras", "--out", out, "--force", "--skip-parity",
            env=cli_env(tmp_path),
        )  # fmt: skip
    assert_clean_error(result, PROG, str(out.parent), "another process", "wait for it")
    assert snapshot(out) == before


def test_truncated_model_is_named(models, existing, tmp_path, capsys):
    out, before = existing
    data = (models / "good.keras").read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) // 2])
    argv = ["--model", cut, "--out", out, "--force", "--skip-parity"]
    assert_clean_error(
        call(tfjs.main, argv, capsys), PROG, f"{cut}: not a readable .keras model", "truncated"
    )
    assert snapshot(out) == before
