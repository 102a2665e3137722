"""What every CLI shares: whole error messages, -v tracebacks, ~ in path options."""

from __future__ import annotations

import gc
import os
import signal
import time

import pytest

from tfmelanoma import cli, evaluate, segment
from tfmelanoma.errors import RunFolderError


def test_fail_prints_every_line_of_the_message(capsys):
    error = FileNotFoundError("isic2017: 2 expected file(s) missing:\na.csv\nb.zip")
    assert cli.fail("prog", error) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "prog: error: isic2017: 2 expected file(s) missing:",
        "  a.csv",
        "  b.zip",
    ]


def test_traceback_only_with_v(capsys):
    parser = cli.OneLineErrorParser(prog="prog")
    for argv, shown in (([], False), (["-v"], True)):
        parser.parse_args(argv)
        try:
            raise RunFolderError("runs/x: no run to resume")
        except RunFolderError as e:
            cli.fail("prog", e)
        err = capsys.readouterr().err
        assert ("Traceback" in err) is shown, err
        assert err.rstrip().endswith("prog: error: runs/x: no run to resume")
    parser.parse_args([])  # leave the module as the other tests expect it


def test_v_works_before_and_after_a_sub_command():
    parser = segment.build_parser()
    assert (
        parser.parse_args(["-v", "predict", "--model", "m", "--images", "i", "--out", "o"]).verbose
        == 1
    )
    assert (
        parser.parse_args(["predict", "-vv", "--model", "m", "--images", "i", "--out", "o"]).verbose
        == 2
    )
    assert (
        parser.parse_args(["predict", "--model", "m", "--images", "i", "--out", "o"]).verbose == 0
    )


@pytest.mark.parametrize(
    ("build", "argv", "attrs"),
    [
        (
            evaluate.build_parser,
            ["--model", "~/r", "--out", "~/o", "--images-dir", "$HOME/i", "--data-dir", "~/d"],
            ("model", "out", "images_dir", "data_dir"),
        ),
        (
            segment.build_parser,
            ["predict", "--model", "~/m.keras", "--images", "~/i", "--out", "$HOME/o"],
            ("model", "images", "out"),
        ),
    ],
)
def test_path_options_expand_home_and_variables(monkeypatch, tmp_path, build, argv, attrs):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = build().parse_args(argv)
    for attr in attrs:
        value = getattr(args, attr)
        value = value[0] if isinstance(value, list) else value
        assert str(value).startswith(str(tmp_path)), (attr, value)


def test_export_path_options_expand_home(monkeypatch, tmp_path):
    from export import tfjs

    monkeypatch.setenv("HOME", str(tmp_path))
    args = tfjs.parse_args(["--model", "~/m.keras", "--out", "$HOME/web", "--metrics", "~/x.json"])
    assert (args.model, args.out, args.metrics) == (
        tmp_path / "m.keras",
        tmp_path / "web",
        tmp_path / "x.json",
    )


def _cleanup_that_masks_ctrl_c():
    # What TensorFlow's device scope does when SIGINT lands between its enter and exit: its
    # __exit__ raises a RuntimeError while the KeyboardInterrupt is on its way out.
    try:
        raise KeyboardInterrupt
    finally:
        raise RuntimeError("Exiting device scope without proper scope nesting")


def test_ctrl_c_masked_by_cleanup_is_still_an_interrupt(capsys):
    assert cli.run_command("prog", _cleanup_that_masks_ctrl_c, on_interrupt="nothing lost") == 130
    err = capsys.readouterr().err
    assert err.strip() == "prog: interrupted; nothing lost"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ctrl_c_that_python_drops_still_stops_the_commit(capsys):
    """A SIGINT whose KeyboardInterrupt is raised inside a garbage-collection callback (as in
    JAX's `_xla_gc_callback`) is dropped by Python and the command goes on; at its commit point
    `raise_if_interrupted` still stops it: exit 130, the one interrupt line."""
    went_on = []

    def command():
        def callback(phase, info):
            if phase == "start" and not went_on:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)  # the handler runs here, inside the callback

        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)
        went_on.append(True)  # the KeyboardInterrupt never reached the command
        cli.raise_if_interrupted()
        return 0

    assert cli.run_command("prog", command, on_interrupt="the old export kept") == 130
    assert went_on == [True]
    assert capsys.readouterr().err.strip().endswith("prog: interrupted; the old export kept")
    # the record is per command, and Python's own handler is back afterwards
    assert cli.run_command("prog", lambda: cli.raise_if_interrupted() or 0, on_interrupt="x") == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_other_errors_pass_through_unchanged(capsys):
    def bug():
        raise RuntimeError("a real bug")

    with pytest.raises(RuntimeError, match="a real bug"):
        cli.run_command("prog", bug, on_interrupt="x")

    def bad_value():
        try:
            raise KeyError("handled earlier")
        except KeyError:
            raise ValueError("bad value") from None

    assert cli.run_command("prog", bad_value, on_interrupt="x") == 2
    assert "prog: error: bad value" in capsys.readouterr().err
