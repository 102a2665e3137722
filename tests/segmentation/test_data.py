"""Segmentation input pipeline: folders, builders, errors, joint augmentation (eager and in tf.data)."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfmelanoma.config import load_config
from tfmelanoma.data import segmentation as data
from tfmelanoma.data import segmentation_sources as sources
from tfmelanoma.models.segmentation.colour_space import rgb_to_lab

DUMMY_ISIC2017 = Path(__file__).resolve().parents[2] / "tfds_builders" / "isic2017" / "dummy_data"


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(array))


def _marked_pair(size=16, seed=0):
    """An image whose red channel is 255 exactly where the (asymmetric) mask is 1."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size, 1), "float32")
    mask[2:7, 3:12] = 1
    mask[7:13, 3:6] = 1
    image = rng.uniform(0, 200, (size, size, 3)).astype("float32")
    image[..., 0] = np.where(mask[..., 0] > 0, 255.0, image[..., 0] * 0.5)
    return image, mask


def _assert_still_paired(image, mask):
    image, mask = np.asarray(image), np.asarray(mask)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    # Bilinear resizing blurs the edge by a pixel; the interior must still agree.
    agree = (image[..., 0] > 127.5) == (mask[..., 0] > 0.5)
    assert agree.mean() > 0.9


def test_augment_pair_is_identical_for_image_and_mask_eagerly():
    image, mask = _marked_pair()
    outputs = [data.augment_pair(image, mask, tf.constant([s, 7]), size=16) for s in range(12)]
    for out_image, out_mask in outputs:
        assert out_image.shape == (16, 16, 3) and out_mask.shape == (16, 16, 1)
        _assert_still_paired(out_image, out_mask)
    # The draws really vary (flips/rotations/crops), and a seed reproduces its draw.
    distinct = {np.asarray(m).tobytes() for _, m in outputs}
    assert len(distinct) > 3
    again = data.augment_pair(image, mask, tf.constant([0, 7]), size=16)
    np.testing.assert_array_equal(np.asarray(again[1]), np.asarray(outputs[0][1]))


def test_augment_pair_inside_dataset_map():
    image, mask = _marked_pair()
    ds = tf.data.Dataset.from_tensors((image, mask)).repeat(8)
    seeds = tf.data.Dataset.random(seed=3).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds)).map(lambda p, s: data.augment_pair(p[0], p[1], s))
    masks = []
    for out_image, out_mask in ds:
        _assert_still_paired(out_image, out_mask)
        masks.append(out_mask.numpy().tobytes())
    assert len(set(masks)) > 2


@pytest.fixture
def folder(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for i in range(3):
        image, mask = _marked_pair(size=20, seed=i)
        _write_png(images / f"case{i}.png", image.astype(np.uint8))
        _write_png(masks / f"case{i}_segmentation.png", (mask * 255).astype(np.uint8))
    _write_png(images / "case0_superpixels.png", np.zeros((20, 20, 3), np.uint8))
    (images / "metadata.csv").write_text("not an image\n")
    return images, masks


def test_folder_pairs_and_dataset(folder):
    images, masks = folder
    pairs = sources.folder_pairs(images, masks)
    assert pairs.image_ids == ["case0", "case1", "case2"]
    ds = data.make_dataset(pairs, image_size=16, batch_size=2)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [2, 1]
    x, y = batches[0]
    assert x.dtype == tf.float32 and y.shape == (2, 16, 16, 1)
    assert float(tf.reduce_max(x)) > 200  # RGB [0, 255], not normalised: the model contract
    for image, mask in zip(x, y, strict=True):
        _assert_still_paired(image, mask)


def test_dataset_colour_space_option_and_augmentation(folder):
    pairs = sources.folder_pairs(*folder)
    plain = next(iter(data.make_dataset(pairs, 16, 3)))
    lab = next(iter(data.make_dataset(pairs, 16, 3, colour_space="lab")))
    np.testing.assert_allclose(lab[0].numpy(), rgb_to_lab(plain[0]).numpy(), atol=1e-5)
    aug = data.make_dataset(pairs, 16, 3, augment=True, shuffle=True, repeat=True, seed=1)
    for x, y in aug.take(3):
        for image, mask in zip(x, y, strict=True):
            _assert_still_paired(image, mask)


def test_missing_mask_is_named(folder):
    images, masks = folder
    (masks / "case1_segmentation.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"case1\.png \(expected case1_segmentation\.png\)"):
        sources.folder_pairs(images, masks)


def _config(tmp_path, *overrides):
    return load_config("segmentation_smoke", [f"data.data_dir={tmp_path / 'tfds'}", *overrides])


def test_missing_folders_and_missing_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="images folder not found"):
        sources.folder_pairs(tmp_path / "nope", tmp_path)
    from tfmelanoma.errors import DatasetNotPreparedError

    with pytest.raises(DatasetNotPreparedError, match=r"isic2017/segmentation_512.* not prepared"):
        sources.load_segmentation_data(_config(tmp_path))
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "README.txt").write_text("not the download")
    with pytest.raises(FileNotFoundError, match="ISIC-2017_Training_Data"):
        sources.load_segmentation_data(_config(tmp_path, f"data.manual_dir={tmp_path / 'manual'}"))


def test_builder_splits_on_the_dummy_data(tmp_path):
    cfg = _config(tmp_path, f"data.manual_dir={DUMMY_ISIC2017}", "data.limit=0", "data.val_limit=0")
    splits = sources.load_segmentation_data(cfg)
    assert splits.train.builder == "isic2017/segmentation_512"
    assert (splits.train.split, splits.validation.split, splits.test.split) == (
        "train",
        "validation",
        "test",
    )
    ids = data.image_ids(splits.train)
    assert ids and all(i.startswith("ISIC_") for i in ids) and len(ids) == len(splits.train)
    x, y = next(iter(data.eval_dataset(splits.train, 32, 64)))
    assert x.shape == (len(ids), 32, 32, 3) and y.shape == (len(ids), 32, 32, 1)
    assert set(np.unique(y.numpy())) <= {0.0, 1.0} and float(tf.reduce_max(y)) == 1.0
    # A held-out validation part (data.val_split=''): seeded, disjoint, the rest trains.
    held = sources.load_segmentation_data(
        _config(tmp_path, f"data.manual_dir={DUMMY_ISIC2017}", "data.val_split=", "data.limit=0")
    )
    assert held.validation.split == "train" and "held out" in held.validation.name
    assert not set(held.train.rows) & set(held.validation.rows)
    assert len(held.train) + len(held.validation) == len(splits.train)
    assert data.image_ids(held.validation) == [ids[r] for r in held.validation.rows]
