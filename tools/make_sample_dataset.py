"""Builds the embedded CC0 sample dataset shipped in `tfmelanoma/data/sample/`.

Source: the ISIC Archive UDA-1 set (CC0; 557 dermoscopic images with per-image JSON metadata).
The images are shrunk to a 128 px long side and re-encoded as JPEG quality 90, so the whole set
stays around 3 MB; the JSON metadata, LICENSE and ATTRIBUTION are copied unchanged. The layout
is the archive's own (`images/`, `metadata/`), so the `isic_archive` TFDS builder reads it.

Usage:
    python tools/make_sample_dataset.py ../shared/data/isic_archive_uda1 tfmelanoma/data/sample
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image
from tqdm import tqdm

LONG_SIDE = 128
QUALITY = 90


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of the ISIC Archive UDA-1 download")
    parser.add_argument("dest", type=Path, help="output folder (replaced)")
    args = parser.parse_args(argv)

    images = sorted((args.source / "images").glob("*.jpg"))
    if not images:
        parser.error(f"{args.source / 'images'}: no .jpg files found")
    tmp = args.dest.with_name(args.dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "metadata").mkdir()
    for path in tqdm(images, desc="sample images", unit="img"):
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
            img.save(tmp / "images" / path.name, quality=QUALITY, optimize=True)
        meta = args.source / "metadata" / f"{path.stem}.json"
        shutil.copy(meta, tmp / "metadata" / meta.name)
    for name in ("LICENSE.txt", "ATTRIBUTION.txt"):
        shutil.copy(args.source / name, tmp / name)
    # Swap in only once everything was written: a failed run leaves the old sample intact.
    shutil.rmtree(args.dest, ignore_errors=True)
    tmp.rename(args.dest)


if __name__ == "__main__":
    main()
