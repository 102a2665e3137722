"""Reading the web demo's embedded-JSON scripts (`self.NAME = <json>;`), for its tests."""

from __future__ import annotations

import json
from pathlib import Path


def assigned_json(path: Path, name: str):
    """The JSON value a classic script assigns to `self.<name>` (gallery.js, model.js, ...)."""
    text = path.read_text()
    return json.loads(text.split(f"self.{name} = ", 1)[1].strip().rstrip(";"))
