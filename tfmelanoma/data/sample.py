"""The embedded default dataset: 557 CC0 ISIC Archive (UDA-1) images shipped in the package.

It is the `isic_archive` layout (images/ + metadata/, 128 px long side; see
`tools/make_sample_dataset.py`, LICENSE.txt and ATTRIBUTION.txt beside the images), prepared
with the `isic_archive` TFDS builder into a private data dir, so the default training run works
offline and through exactly the code path of every other dataset.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import tensorflow_datasets as tfds

SAMPLE_NAME = "sample"
BUILDER_NAME = "isic_archive/original"
NUM_EXAMPLES = 557
NUM_MELANOMA = 159


def sample_dir() -> Path:
    """Folder of the embedded images and metadata."""
    return Path(str(resources.files("tfmelanoma").joinpath("data", "sample")))


def default_data_dir() -> Path:
    """Where the sample is prepared: $TFMELANOMA_CACHE or ~/.cache/tfmelanoma/tfds."""
    root = os.environ.get("TFMELANOMA_CACHE") or Path.home() / ".cache" / "tfmelanoma"
    return Path(root) / "tfds"


def prepare_sample(
    data_dir: os.PathLike | str | None = None, *, file_format: str = "tfrecord"
) -> tfds.core.DatasetBuilder:
    """Prepares (once) and returns the `isic_archive` builder over the embedded sample.

    Args:
        data_dir: TFDS data dir; default `default_data_dir()`. Kept separate from the user's own
            `isic_archive` preparations so the two never mix.
        file_format: "tfrecord" (tf.data) or "array_record" (`tfds.data_source`, TF-free reading).
    """
    import tfds_builders  # noqa: F401  (registers isic_archive)

    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if file_format != "tfrecord":
        data_dir = data_dir / file_format
    builder = tfds.builder(BUILDER_NAME, data_dir=str(data_dir), file_format=file_format)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(sample_dir()))
    )
    return builder
