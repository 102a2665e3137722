"""Shared CLI plumbing: one-line usage errors, whole-message failures, the error types CLIs catch."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import traceback
from collections.abc import Callable

from tfmelanoma.errors import TfmelanomaError

# What a CLI turns into `prog: error: ...` + exit 2 instead of a traceback: the toolkit's own
# errors, bad values, missing or existing files, and the operating system's refusals (disk full,
# read-only folder, permission denied), which name the path in their message.
USER_ERRORS = (TfmelanomaError, ValueError, KeyError, FileNotFoundError, FileExistsError, OSError)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's default in --help (unless it is None/False or the text already says it);
    descriptions and epilogs (examples) keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" in text
            or "default" in text.lower()
            or action.default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: `prog: error: message` (exit 2).

    Every CLI built on it has `-v/--verbose` (more log output, and with it the traceback of an
    error, for a bug report).
    """

    verbose_default: object = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=self.verbose_default,
            help="more log output (-vv: debug) and errors with their traceback (default: off)",
        )

    def add_subparsers(self, **kwargs):  # noqa: D102 (argparse API)
        kwargs.setdefault("parser_class", SubcommandParser)
        return super().add_subparsers(**kwargs)

    def parse_args(self, args=None, namespace=None):  # noqa: D102 (argparse API)
        parsed = super().parse_args(args, namespace)
        global _TRACEBACKS
        _TRACEBACKS = parsed.verbose > 0
        return parsed

    def error(self, message: str):  # noqa: D102 (argparse API)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def message_of(error: BaseException | str) -> str:
    """The text of an error as a person should read it (KeyError's quotes dropped)."""
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    elif isinstance(error, OSError) and not isinstance(error, TfmelanomaError) and error.strerror:
        # "[Errno 28] No space left on device: 'runs/x/best.keras'" -> readable, path first
        where = f"{error.filename}: " if error.filename else ""
        text = f"{where}{error.strerror}"
    else:
        text = str(error)
    return text.strip() or type(error).__name__


class SubcommandParser(OneLineErrorParser):
    """A sub-command's parser: its -v adds to the main parser's instead of resetting it."""

    verbose_default = argparse.SUPPRESS


_TRACEBACKS = False  # set by OneLineErrorParser.parse_args from -v


def fail(prog: str, message: BaseException | str, code: int = 2) -> int:
    """Prints `prog: error: <message>` on stderr, every line of it, and returns the exit code.

    The whole message is kept: its later lines are what a person acts on (the list of missing
    files, the command that resumes a run). With `-v` the error's traceback comes first.
    """
    if _TRACEBACKS and isinstance(message, BaseException):
        traceback.print_exception(message, file=sys.stderr)
    first, *rest = message_of(message).splitlines()
    print(f"{prog}: error: {first}", file=sys.stderr)
    for line in rest:
        print(f"  {line}" if line and not line.startswith(" ") else line, file=sys.stderr)
    return code


def interrupted(prog: str, what: str) -> int:
    """Ctrl-C: one line saying what state things are in (no traceback); exit status 130."""
    print(f"\n{prog}: interrupted; {what}", file=sys.stderr)
    return 130


@contextlib.contextmanager
def ctrl_c_unmasked():
    """Lets Ctrl-C reach the caller as KeyboardInterrupt even when cleanup code turned it into
    another error on its way out.

    A SIGINT that lands between TensorFlow's entering and leaving a device scope inside
    `model.fit` makes the scope's `__exit__` raise `RuntimeError: Exiting device scope without
    proper scope nesting`, with the KeyboardInterrupt only as its context: without this the user
    saw a traceback and exit 1 instead of the "interrupted" line and exit 130.
    """
    try:
        yield
    except Exception as err:
        cause: BaseException | None = err
        seen = set()
        while cause is not None and id(cause) not in seen:
            if isinstance(cause, KeyboardInterrupt):
                raise KeyboardInterrupt from err
            seen.add(id(cause))
            cause = cause.__cause__ or cause.__context__
        raise


_ctrl_c_seen = False
"""Whether a SIGINT arrived during the current `run_command` (see `raise_if_interrupted`)."""


def _on_sigint(signum, frame):
    global _ctrl_c_seen
    _ctrl_c_seen = True
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raises KeyboardInterrupt if Ctrl-C was pressed during this command, even if the
    KeyboardInterrupt itself never reached the command. Call it just before a command replaces
    what the user has (its commit point).

    Python drops an exception raised inside a garbage-collection callback ("Exception ignored
    in: <function _xla_gc_callback ...>" on stderr): a SIGINT whose handler runs while JAX's
    callback does is lost, and the command would go on to swap in a result the user asked it to
    abandon (seen once in CI: `export.tfjs` interrupted mid-conversion exited 0 and replaced the
    old export).
    """
    if _ctrl_c_seen:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _ctrl_c_recorded():
    """Python's default SIGINT handler, plus a record that it ran (`raise_if_interrupted`).
    Only where Python's own handler is installed (not under SIG_IGN, not in a worker thread)."""
    global _ctrl_c_seen
    _ctrl_c_seen = False
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_command(prog: str, command: Callable[[], int], *, on_interrupt: str) -> int:
    """Runs a CLI command: its exit status, or a user error / Ctrl-C turned into one message.

    Args:
        prog: the command's name, for the messages.
        command: does the work; returns the exit status.
        on_interrupt: what state Ctrl-C leaves things in (`interrupted`'s line).
    """
    try:
        with _ctrl_c_recorded(), ctrl_c_unmasked():
            return command()
    except KeyboardInterrupt:
        return interrupted(prog, on_interrupt)
    except USER_ERRORS as err:
        return fail(prog, err)
