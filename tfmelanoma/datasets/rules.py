"""The de-duplication rules' names and defaults, importable without NumPy or pandas.

`tfmelanoma.datasets.dedup` implements the rules; the command line reads these constants to
show its defaults in `--help` before anything heavy is imported.
"""

from __future__ import annotations

RULES: tuple[str, ...] = ("isic_id", "sha256", "phash", "lesion", "patient")
"""Match rules in attribution order."""

CONTENT_RULES: tuple[str, ...] = ("isic_id", "sha256", "phash")
"""Rules that say two rows are the same image (used to group and to de-duplicate training data)."""

DEFAULT_MAX_DISTANCE = 4
"""Default pHash Hamming threshold; see docs/datasets.md for the measurement behind it."""

RULE_MEANINGS: dict[str, str] = {
    "isic_id": "the same ISIC image id (ISIC_0000123), whatever the file name around it",
    "sha256": "identical decoded pixels",
    "phash": "perceptual hashes within --max-distance bits (resized or re-encoded copies)",
    "lesion": "the same lesion id (not a duplicate, but leakage all the same)",
    "patient": "the same patient id (not a duplicate, but leakage all the same)",
}
"""One line per rule, for help texts (the dedup module docstring has the details)."""
