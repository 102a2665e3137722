"""The embedded default dataset: 557 CC0 ISIC Archive (UDA-1) images shipped in the package.

It is the `isic_archive` layout (images/ + metadata/, 128 px long side; see
`tools/make_sample_dataset.py`, LICENSE.txt and ATTRIBUTION.txt beside the images), prepared by
the `isic_archive` TFDS builder's `sample` config, so the default training run works offline and
through exactly the code path of every other dataset. Its name in combinations is `sample`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE_NAME = "sample"
BUILDER_NAME = "isic_archive/sample"


def sample_dir() -> Path:
    """Folder of the embedded images and metadata."""
    return Path(str(resources.files("tfmelanoma").joinpath("data", "sample")))
