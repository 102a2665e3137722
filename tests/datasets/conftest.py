"""Fixtures: hand-made tiny TFDS datasets with planted duplicates and same-patient images.

`Ds4Tiny` is a real TFDS builder (registered as ``ds4_tiny``) with two configs that play two
datasets: ``ds4_tiny/alpha`` (train / validation / test) and ``ds4_tiny/beta`` (train only).
Images are written to a manual folder first and read back through `tfds_builders.common`, exactly
like the real builders do, so hashes come from the same code path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from tfds_builders import common

# Planted leaks: beta row name -> (stage, rule) the merge must report for it.
PLANTED = {
    "beta_exact_copy": ("test_overlap", "sha256"),
    "beta_reencoded_jpeg": ("test_overlap", "phash"),
    "beta_resized_copy": ("test_overlap", "phash"),
    "ISIC_0000777_other_name": ("test_overlap", "isic_id"),
    "beta_same_patient": ("test_overlap", "patient"),
    "beta_copy_of_validation": ("validation_overlap", "sha256"),
    "beta_copy_of_alpha_train": ("train_duplicate", "phash"),
}


def _texture(rng: np.random.Generator, size: int = 64) -> Image.Image:
    """A smooth random colour image: distinct pHashes, survives JPEG and resizing."""
    coarse = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    noise = rng.integers(-6, 7, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(img, int) + noise, 0, 255).astype(np.uint8))


def write_manual_dirs(root: Path, seed: int = 0) -> dict[str, Path]:
    """Writes alpha/ and beta/ manual folders (PNG/JPEG files + spec.json); returns their paths."""
    rng = np.random.default_rng(seed)
    specs: dict[str, dict[str, list[dict]]] = {"alpha": {}, "beta": {}}
    images: dict[tuple[str, str], Image.Image] = {}

    def add(ds, split, name, img, *, label, patient="", fmt="png", quality=95):
        folder = root / ds / split
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / f"{name}.{'jpg' if fmt == 'jpeg' else 'png'}"
        img.save(file, **({"quality": quality} if fmt == "jpeg" else {}))
        specs[ds].setdefault(split, []).append(
            {"file": str(file), "image_id": name, "label": label, "patient_id": patient}
        )
        images[(ds, name)] = img

    labels = ["nevus", "melanoma"]
    for i in range(12):
        add("alpha", "train", f"alpha_train_{i:02d}", _texture(rng), label=labels[i % 3 == 0])
    for i in range(5):
        add("alpha", "validation", f"alpha_val_{i}", _texture(rng), label=labels[i % 2])
    test_names = [f"alpha_test_{i}" for i in range(6)]
    test_names[3] = "ISIC_0000777"
    for i, name in enumerate(test_names):
        patient = "IP_0000001" if i == 4 else ""
        add("alpha", "test", name, _texture(rng), label=labels[i % 2], patient=patient)
    # beta: ordinary images (two per patient, per-dataset patient ids) ...
    for i in range(14):
        add("beta", "train", f"beta_{i:02d}", _texture(rng), label=labels[i % 4 == 0],
            patient=f"B{i // 2}")  # fmt: skip
    # ... and the planted leaks.
    t = images
    add("beta", "train", "beta_exact_copy", t[("alpha", "alpha_test_0")], label="nevus")
    add("beta", "train", "beta_reencoded_jpeg", t[("alpha", "alpha_test_1")], label="melanoma",
        fmt="jpeg", quality=60)  # fmt: skip
    resized = t[("alpha", "alpha_test_2")].resize((40, 40), Image.Resampling.LANCZOS)
    add("beta", "train", "beta_resized_copy", resized, label="nevus", fmt="jpeg")
    add("beta", "train", "ISIC_0000777_other_name", _texture(rng), label="nevus")
    add("beta", "train", "beta_same_patient", _texture(rng), label="nevus", patient="IP_0000001")
    add("beta", "train", "beta_copy_of_validation", t[("alpha", "alpha_val_0")], label="melanoma")
    copy = t[("alpha", "alpha_train_05")].resize((48, 48), Image.Resampling.LANCZOS)
    add("beta", "train", "beta_copy_of_alpha_train", copy, label="nevus", fmt="jpeg")
    out = {}
    for ds, spec in specs.items():
        (root / ds / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        out[ds] = root / ds
    return out


class Ds4Tiny(tfds.core.GeneratorBasedBuilder):
    """Tiny test dataset; configs alpha and beta."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Written by tests/datasets/conftest.py:write_manual_dirs."
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="alpha", description="train/validation/test"),
        tfds.core.BuilderConfig(name="beta", description="train only"),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, features=common.classification_features())

    def _split_generators(self, dl_manager):
        spec = json.loads((Path(dl_manager.manual_dir) / "spec.json").read_text())
        return {split: self._generate_examples(rows) for split, rows in spec.items()}

    def _generate_examples(self, rows):
        for row in rows:
            image = common.read_image(row["file"])
            yield (
                row["image_id"],
                common.make_example(
                    dataset="isic_archive",
                    image=image,
                    image_id=row["image_id"],
                    diagnosis=row["label"],
                    patient_id=row["patient_id"],
                ),
            )


def prepare(root: Path, data_dir: Path, file_format: str = "array_record") -> None:
    """Writes the manual folders under `root` and prepares both configs into `data_dir`."""
    manual = write_manual_dirs(root)
    for config in ("alpha", "beta"):
        builder = Ds4Tiny(config=config, data_dir=str(data_dir))
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual[config])),
            file_format=file_format,
        )


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A TFDS data_dir with ``ds4_tiny/alpha`` and ``ds4_tiny/beta`` prepared (ArrayRecord)."""
    root = tmp_path_factory.mktemp("ds4_tiny")
    prepare(root / "manual", root / "tfds")
    return root / "tfds"


@pytest.fixture(scope="session")
def planted() -> dict[str, tuple[str, str]]:
    """beta image id -> (stage, rule) expected for each planted leak."""
    return dict(PLANTED)


@pytest.fixture(scope="session")
def tiny_tfrecord_dir(tmp_path_factory) -> Path:
    """The same tiny datasets prepared as TFRecord (the TFDS default format)."""
    root = tmp_path_factory.mktemp("ds4_tiny_tfrecord")
    prepare(root / "manual", root / "tfds", file_format="tfrecord")
    return root / "tfds"


@pytest.fixture
def tiny_manual_dirs(tmp_path) -> dict[str, Path]:
    """The manual folders of ``ds4_tiny`` (alpha/, beta/), not prepared anywhere yet."""
    return write_manual_dirs(tmp_path / "manual")
