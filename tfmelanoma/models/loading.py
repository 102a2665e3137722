"""Loading a user's `.keras` model: one function for every command (evaluate, export, segment).

Keras answers a truncated or corrupt `.keras` file with "File not found: filepath=..." about a
file that exists (it only asks `zipfile.is_zipfile`); here the archive is checked first so the
message says what is wrong with which file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from tfmelanoma.errors import ModelFileError

# A run folder's model, in order: `python -m tfmelanoma.segment train` writes model.keras,
# `python -m tfmelanoma.train` best.keras (and, while it runs, the checkpoint that
# checkpoints/state.json names; checkpoints/last.keras in runs made before that).
RUN_FOLDER_MODELS = ("model.keras", "best.keras", "checkpoints/last.keras")


def _checkpoint_model(folder: Path) -> list[Path]:
    """The model file that `folder/checkpoints/state.json` names, if any."""
    from tfmelanoma.training.checkpoints import model_path

    try:
        found = model_path(folder / "checkpoints")
    except (ValueError, OSError):  # an unreadable state: the other names still apply
        return []
    return [found] if found is not None else []


def resolve_model_path(path: str | Path) -> tuple[Path, Path | None]:
    """The `.keras` file that `--model PATH` means, and the run folder when PATH is one.

    Args:
        path: a `.keras` file, or a run folder holding one of `RUN_FOLDER_MODELS` (first found),
            else exactly one `*.keras` at its top level.

    Returns:
        (model file, run folder or None).

    Raises:
        FileNotFoundError: PATH does not exist, or the folder holds no or several `.keras` files.
        ModelFileError: PATH is a file but not a `.keras` file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"--model {path}: no such file or folder "
            "(expected a run folder or an existing .keras file)"
        )
    if path.is_dir():
        named = [path / name for name in RUN_FOLDER_MODELS]
        named[2:2] = _checkpoint_model(path)  # after best.keras
        preferred = [p for p in named if p.is_file()]
        candidates = preferred[:1] or sorted(path.glob("*.keras"))
        if len(candidates) != 1:
            raise FileNotFoundError(
                f"--model {path}: expected {', '.join(RUN_FOLDER_MODELS)} or exactly one "
                f"*.keras file in the run folder, found {[str(c) for c in candidates] or 'none'}"
            )
        return candidates[0], path
    if path.suffix != ".keras":
        raise ModelFileError(
            f"--model {path}: expected a .keras file (Keras 3 format) or a run folder"
        )
    return path, None


def _check_archive(path: Path) -> None:
    """Raises ModelFileError when `path` is not a complete zip archive (what `.keras` is)."""
    what = f"{path}: not a readable .keras model"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # CRC of every member: catches a corrupted middle too
            names = set(archive.namelist())
    except zipfile.BadZipFile as err:
        raise ModelFileError(
            f"{what} (truncated or corrupt: {err}); copy or save the model again"
        ) from None
    except OSError as err:
        raise ModelFileError(f"{what} ({err.strerror or err})") from None
    if bad is not None:
        raise ModelFileError(
            f"{what} (truncated or corrupt: member {bad!r} fails its CRC check); "
            "copy or save the model again"
        )
    if "config.json" not in names:
        raise ModelFileError(
            f"{what} (a zip archive without config.json: not saved by Keras 3 `model.save`)"
        )


def load_model(path: str | Path, *, compile: bool = False):
    """Loads a `.keras` file with the toolkit's layers registered, under `safe_mode`.

    Args:
        path: the `.keras` file (see `resolve_model_path` for `--model` values).
        compile: also restore the optimizer/loss (not needed to predict).

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: truncated, corrupt or not a Keras 3 model, naming the file and the cause.
    """
    import keras

    import tfmelanoma.models  # noqa: F401  (registers the custom layers for safe_mode loading)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .keras file")
    _check_archive(path)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=compile)
    except Exception as err:  # Keras raises many types (deserialisation, shapes): name the file
        raise ModelFileError(
            f"{path}: cannot load the Keras model ({type(err).__name__}: {err})"
        ) from err
