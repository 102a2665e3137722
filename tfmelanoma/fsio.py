"""Writes that cannot half-happen, folders one writer at a time, paths that stay in their root.

Every command that writes (prepare, train, segment, grid, export, evaluate) goes through these:

- `atomic_write_text` / `atomic_write_bytes` / `atomic_save_model`: write to a temporary file with
  a unique name in the same folder, then `os.replace` it over the target. A process killed at any
  moment leaves the old file or the new one, never half of one, and two processes never write
  into the same temporary file.
- `folder_lock`: an exclusive, non-blocking `fcntl.flock` on `<folder>/.lock`. The kernel
  releases it when the holder dies (kill -9 included), so a stale lock file never blocks a later
  run; a second writer gets `FolderBusyError` naming the folder and the holder's pid.
- `path_under`: joins a relative path from a data file (a CSV id) to its root and refuses
  anything that lands outside the root (`..`, absolute paths, symlinks out).
- `expand`: `~` and `$VARS` in a path option (a shell leaves `--set x=~/a` unexpanded).

Written by hand because the standard library has the pieces (`os.replace`, `fcntl.flock`,
`tempfile.mkstemp`) but no maintained package in this stack combines them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tfmelanoma.errors import FolderBusyError, RunFolderError, UnsafePathError

LOCK_NAME = ".lock"


def expand(path: str | os.PathLike) -> Path:
    """`~` and environment variables expanded (`--set data.manual_dir=~/downloads`)."""
    return Path(os.path.expandvars(os.path.expanduser(os.fspath(path))))


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any thread
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _temp_in(path: Path, suffix: str) -> Path:
    """A new, unique, empty file beside `path`, with the permissions a plain `open` would give
    (mkstemp makes it 0600)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    return Path(name)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replaces `path` with `data` atomically (unique temporary name, fsync, `os.replace`)."""
    path = Path(path)
    tmp = _temp_in(path, ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Replaces `path` with `text` (UTF-8) atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_model(model, path: Path) -> None:
    """Saves a Keras model to `path` (`.keras`) without ever leaving a partial file there."""
    path = Path(path)
    tmp = _temp_in(path, ".tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _holder(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


@contextlib.contextmanager
def folder_lock(
    folder: Path, what: str = "folder", *, wait: bool = False, on_wait=None
) -> Iterator[Path]:
    """Holds an exclusive lock on `folder` (created) for one writer.

    Args:
        folder: the folder that one process at a time may write.
        what: how the error names it ("run folder", "data dir", ...).
        wait: block until the holder is done (e.g. a second preparation of the same dataset,
            which then finds it prepared) instead of raising.
        on_wait: called once with the message before blocking (to tell the user why it waits).

    Raises:
        FolderBusyError: another process holds the lock (and `wait` is off); names its pid.
        RunFolderError: a file is where the folder (or one above it) should be.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        in_the_way = next(p for p in (folder, *folder.parents) if p.exists() and not p.is_dir())
        raise RunFolderError(
            f"{folder}: {in_the_way} is a file; expected a folder for this {what} "
            "(move the file or choose another folder)"
        ) from None
    lock_path = folder / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = f"{folder}: another process{_holder(lock_path)} is writing this {what}"
            if not wait:
                raise FolderBusyError(
                    f"{message}; wait for it to finish or use another folder"
                ) from None
            if on_wait is not None:
                on_wait(f"{message}; waiting for it to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield folder
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race a new holder)


def path_under(root: Path, relative: str, *, source: str = "") -> Path:
    """`root / relative`, refused when it is absolute or resolves outside `root`.

    Args:
        root: the folder the data file describes.
        relative: a path read from the data file (e.g. an image id).
        source: where `relative` came from, for the message (e.g. "train.csv row 12").

    Raises:
        UnsafePathError: naming the value and the root.
    """
    where = f"{source}: " if source else ""
    if not relative or os.path.isabs(relative) or Path(relative).drive:
        raise UnsafePathError(
            f"{where}{relative!r} is not a relative path inside {root}; expected a file name"
        )
    root_resolved = Path(root).resolve()
    target = (root_resolved / relative).resolve()
    if not target.is_relative_to(root_resolved):
        raise UnsafePathError(
            f"{where}{relative!r} points outside {root}; expected a file name inside it"
        )
    return Path(root) / relative


def check_output_folder(out: Path, overwrite: bool, what: str = "report folder") -> None:
    """Refuses an output folder that already holds something, unless `overwrite`.

    Raises:
        RunFolderError: `out` is a file, or a non-empty folder and `overwrite` is off (the
            message names a few of the files and the --overwrite flag).
    """
    from tfmelanoma.errors import RunFolderError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file; expected a {what}")
    held = [p.name for p in out.iterdir() if p.name != LOCK_NAME] if out.is_dir() else []
    if held and not overwrite:
        raise RunFolderError(
            f"--out {out} is not empty ({', '.join(sorted(held)[:4])}"
            f"{', ...' if len(held) > 4 else ''}); pass --overwrite to replace what is there "
            "or choose another folder"
        )
