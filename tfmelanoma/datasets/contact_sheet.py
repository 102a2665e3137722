"""Contact sheets: every removal (or rejected candidate) as an image pair, for a person to audit.

One PNG page per `per_page` pairs: the removed (or kept) row on the left, the row it matched on
the right, under them the rule, the pHash distance and the pixel check's scores
(`tfmelanoma.datasets.verify`). Images come from the prepared datasets (`read_images`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

_TILE = 128


def _thumb(image: np.ndarray | None) -> Image.Image:
    if image is None:  # unreadable: a grey square keeps the layout
        return Image.new("RGB", (_TILE, _TILE), (128, 128, 128))
    return Image.fromarray(image).convert("RGB").resize((_TILE, _TILE), Image.Resampling.BILINEAR)


def _caption(row) -> list[str]:
    left = f"{row['dataset']}:{row['split']}/{row['image_id']}"
    right = f"{row['matched_dataset']}:{row['matched_split']}/{row['matched_image_id']}"
    scores = [f"{row.get('stage', '')} {row.get('rule', 'rejected')}"]
    if row.get("distance", -1) >= 0:
        scores.append(f"d={int(row['distance'])}")
    if pd.notna(row.get("texture", np.nan)):
        scores.append(f"tex={row['texture']:.2f}")
    if row.get("inliers", -1) >= 0:
        scores.append(f"kp={int(row['inliers'])}")
    return [left[-44:], right[-44:], " ".join(scores)]


def write_sheets(
    pairs: pd.DataFrame, images: dict, out_dir: Path, stem: str, per_page: int = 40
) -> list[Path]:
    """Writes `<stem>_001.png`, ... for the rows of `pairs`; returns the paths ([] if none).

    Args:
        pairs: removal records (`MergeReport.removed`) or `MergeReport.rejected`: each row names
            its own (dataset, split, position) and the matched one's (`matched_*`).
        images: (dataset, split, position) -> uint8 image, for both sides (missing: grey).
        out_dir: folder for the PNGs.
        stem: file name stem, e.g. "removed".
        per_page: pairs per PNG (4 per row).
    """
    paths = []
    cols, cell_w, cell_h = 4, 2 * _TILE + 12, _TILE + 46
    for page, start in enumerate(range(0, len(pairs), per_page), start=1):
        chunk = pairs.iloc[start : start + per_page]
        rows = (len(chunk) + cols - 1) // cols
        sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
        draw = ImageDraw.Draw(sheet)
        for k, (_, row) in enumerate(chunk.iterrows()):
            x, y = (k % cols) * cell_w, (k // cols) * cell_h
            own = images.get((row["dataset"], row["split"], int(row["position"])))
            other = images.get(
                (row["matched_dataset"], row["matched_split"], int(row["matched_position"]))
            )
            sheet.paste(_thumb(own), (x + 2, y + 2))
            sheet.paste(_thumb(other), (x + _TILE + 6, y + 2))
            for i, line in enumerate(_caption(row)):
                draw.text((x + 2, y + _TILE + 4 + 12 * i), line, fill="black")
        path = out_dir / f"{stem}_{page:03d}.png"
        sheet.save(path)
        paths.append(path)
    return paths


def sides(pairs: pd.DataFrame) -> pd.DataFrame:
    """The (dataset, split, position) rows both sides of `pairs` need, for `read_images`."""
    own = pairs[["dataset", "split", "position"]]
    other = pairs[["matched_dataset", "matched_split", "matched_position"]].set_axis(
        ["dataset", "split", "position"], axis=1
    )
    return pd.concat([own, other], ignore_index=True).drop_duplicates()
