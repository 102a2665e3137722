"""derm7pt: the seven-point checklist database, a dermoscopic and a clinical image per case."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from tfds_builders import common, generation, manual_files
from tfmelanoma.fsio import path_under

_NAME = "derm7pt"
_ROOT = "release_v0/"
_SPLIT_INDEXES = {"train": "train", "validation": "valid", "test": "test"}
# meta.csv column that holds the image path (relative to images/) for each image type.
_IMAGE_COLUMN = {"dermoscopic": "derm", "clinical": "clinic"}
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


_META_COLUMNS = ("case_num", "diagnosis", "clinic", "derm")


def _read_meta(path: Path, images: Path) -> list[dict[str, str]]:
    """`meta/meta.csv` rows; each image path (`derm`, `clinic`) checked to stay in `images/`.

    Raises:
        tfmelanoma.errors.UnsafePathError: a path that leads out of `images/` (`..`, absolute),
            naming the file, line, column and value.
    """
    rows = []
    for line, row in manual_files.read_csv(path, _META_COLUMNS):
        for column in _IMAGE_COLUMN.values():
            if row[column]:
                path_under(images, row[column], source=f"{path}:{line}: {column}")
        rows.append(row)
    return rows


def _read_indexes(path: Path, n_rows: int) -> list[int]:
    """`meta/<split>_indexes.csv`: 0-based row numbers of meta.csv in column `indexes`."""
    indexes = []
    for line_no, row in manual_files.read_csv(path, ("indexes",)):
        value = row.get("indexes") or ""
        if not value.strip().isdigit() or int(value) >= n_rows:
            raise ValueError(
                f"{path}:{line_no}: index {value!r} is not a row number of meta.csv (0..{n_rows - 1})"
            )
        indexes.append(int(value))
    return indexes


class Builder(generation.BadFilePolicyMixin, tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for derm7pt (dermoscopic and clinical configs, official splits)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Register at https://derm.cs.sfu.ca and download `release_v0.zip`; put the zip, or its
    extracted `release_v0/` folder, in `manual_dir`. The builder reads
    `release_v0/meta/meta.csv`, `release_v0/meta/{train,valid,test}_indexes.csv` and
    `release_v0/images/`.
    """
    BUILDER_CONFIGS = [
        common.LesionConfig(
            name=f"{image_type}_{size}",
            description=f"The {image_type} image of each case, "
            + ("resized to a 512 px long side." if size == "512" else "at original size."),
            max_side=512 if size == "512" else None,
            image_type=image_type,
        )
        for image_type in ("dermoscopic", "clinical")
        for size in ("512", "original")
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "dermoscopic_512"

    def _info(self) -> tfds.core.DatasetInfo:
        return common.lesion_info(self, "https://derm.cs.sfu.ca")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = manual_files.locate_manual_files(
            dl_manager, [_ROOT], dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )[_ROOT.rstrip("/")]
        names = ["meta/meta.csv", "images"]
        names += [f"meta/{prefix}_indexes.csv" for prefix in _SPLIT_INDEXES.values()]
        manual_files.check_manual_files(
            root, names, dataset=_NAME, instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS
        )
        meta = _read_meta(root / "meta" / "meta.csv", root / "images")
        self._report_unreferenced_images(root, meta)
        return {
            split: self._generate_examples(
                split=split,
                root=root,
                rows=[
                    meta[i]
                    for i in _read_indexes(root / "meta" / f"{prefix}_indexes.csv", len(meta))
                ],
            )
            for split, prefix in _SPLIT_INDEXES.items()
        }

    def _report_unreferenced_images(self, root: Path, meta: list[dict[str, str]]) -> None:
        """Images in images/ that no meta.csv row names (as `derm` or `clinic`) have no label."""
        referenced = {
            (root / "images" / row[col]).resolve()
            for row in meta
            for col in _IMAGE_COLUMN.values()
            if row.get(col)
        }
        unlabeled = [
            p
            for p in (root / "images").rglob("*")
            if p.suffix.lower() in _IMAGE_SUFFIXES and p.resolve() not in referenced
        ]
        generation.report_unlabeled(self, "all", unlabeled, root / "meta" / "meta.csv")

    def _generate_examples(self, split: str, root: Path, rows: list[dict[str, str]]):
        image_type = self.builder_config.image_type
        column = _IMAGE_COLUMN[image_type]
        max_side = self.builder_config.max_side
        for row in rows:
            relative = row[column]
            image_id = str(Path(relative).with_suffix(""))

            def make(row=row, relative=relative, image_id=image_id):
                return common.make_example(
                    dataset=_NAME,
                    image=common.read_image(root / "images" / relative, max_side=max_side),
                    image_id=image_id,
                    diagnosis=row["diagnosis"],
                    lesion_id=f"case_{row['case_num']}",  # both images of a case: one lesion
                    sex=row.get("sex"),
                    anatomic_site=row.get("location"),
                    image_type=image_type,
                )

            example = generation.example_or_skip(self, split, make)
            if example is not None:
                yield image_id, example
        self.log_skipped(split)
