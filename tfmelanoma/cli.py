"""Shared CLI plumbing: one-line errors, the config-key listing for --help."""

from __future__ import annotations

import argparse
import sys


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: `prog: error: message` (exit 2)."""

    def error(self, message: str):  # noqa: D102 (argparse API)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str, code: int = 2) -> int:
    """Prints `prog: error: message` on stderr and returns the exit code."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else type(message).__name__
    print(f"{prog}: error: {first}", file=sys.stderr)
    return code
