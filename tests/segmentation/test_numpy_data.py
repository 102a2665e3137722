"""The TF-free segmentation pipeline: same pixels as tf.data, joint augmentation, JAX end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.tf_hidden import HIDE_TENSORFLOW
from tfmelanoma.data import segmentation as data
from tfmelanoma.data import segmentation_numpy as numpy_data
from tfmelanoma.data import segmentation_sources as files
from tfmelanoma.data.image_ops import resize_antialiased_np, resize_mask_np, resize_np
from tfmelanoma.errors import DatasetNotPreparedError

DUMMY_ISIC2017 = Path(__file__).resolve().parents[2] / "tfds_builders" / "isic2017" / "dummy_data"
CONFIG = "isic2017/segmentation_512"


@pytest.mark.parametrize(
    "shape, size", [((256, 256, 3), 64), ((120, 160, 3), 48), ((37, 53, 3), 64), ((20, 20, 3), 20)]
)
def test_resize_matches_tf_data(shape, size):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, shape).astype(np.float32)
    expected = tf.image.resize(image, (size, size), antialias=True).numpy()
    np.testing.assert_allclose(resize_antialiased_np(image, size), expected, atol=1e-3)
    mask = (rng.random((*shape[:2], 1)) > 0.5).astype(np.float32)
    np.testing.assert_array_equal(
        resize_mask_np(mask, size),
        tf.image.resize(mask, (size, size), method="nearest").numpy(),
    )


@pytest.mark.parametrize("side", [13, 40, 51, 64])
def test_upsampling_equals_plain_bilinear(side):
    # The augmentation's crop resize (always upsampling) must be tf.data's plain bilinear.
    crop = np.random.default_rng(side).uniform(0, 255, (side, side, 3)).astype(np.float32)
    expected = resize_np(crop, 64)
    np.testing.assert_allclose(resize_antialiased_np(crop, 64), expected, atol=1e-3)
    plain = tf.image.resize(crop, (64, 64), antialias=False).numpy()
    np.testing.assert_allclose(expected, plain, atol=1e-3)


def _self_masked_image(size=32, seed=0):
    """An image whose mask is its own red channel > 127 (an asymmetric L shape)."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 100, (size, size, 3)).astype(np.float32)
    image[4:14, 6:26, 0] = 255
    image[14:26, 6:12, 0] = 255
    return image, (image[..., :1] > 127).astype(np.float32)


def test_augment_pair_keeps_image_and_mask_aligned():
    image, mask = _self_masked_image()
    masks = set()
    for seed in range(16):
        rng = np.random.default_rng(seed)
        # Without the crop every op is an exact permutation of pixels: equality must be exact.
        out_image, out_mask = numpy_data.augment_pair(image, mask, rng, crop_fraction=1.0)
        np.testing.assert_array_equal(out_mask, (out_image[..., :1] > 127).astype(np.float32))
        masks.add(out_mask.tobytes())
        # With crops, bilinear resizing blurs the image edge by a pixel; the rest must agree.
        out_image, out_mask = numpy_data.augment_pair(image, mask, np.random.default_rng(seed))
        assert out_image.shape == (32, 32, 3) and out_mask.shape == (32, 32, 1)
        assert set(np.unique(out_mask)) <= {0.0, 1.0}
        assert ((out_image[..., 0] > 127.5) == (out_mask[..., 0] > 0.5)).mean() > 0.95
    assert len(masks) >= 6  # the eight flips/rotations really vary


def test_batches_are_seeded_per_epoch_and_resumable():
    source = []
    for i in range(10):
        image, mask = _self_masked_image(seed=i)
        source.append({"image": image.astype(np.uint8), "segmentation_mask": mask * 255})
    kw = {"image_size": 16, "batch_size": 4, "augment": True, "shuffle": True, "seed": 3}
    train = numpy_data.SegmentationBatches(source, **kw)
    assert len(train) == 2
    x, y = train[0]
    assert x.shape == (4, 16, 16, 3) and y.shape == (4, 16, 16, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(numpy_data.SegmentationBatches(source, **kw)[0][0], x)
    train.set_epoch(1)
    assert not np.array_equal(train[0][0], x)
    resumed = numpy_data.SegmentationBatches(source, start_epoch=1, **kw)
    np.testing.assert_array_equal(resumed[1][1], train[1][1])
    # Prefetching threads serve exactly the same batches.
    threaded = numpy_data.SegmentationBatches(source, start_epoch=1, workers=3, **kw)
    np.testing.assert_array_equal(threaded[1][0], train[1][0])
    wrapped = numpy_data.SegmentationBatches(source, steps_per_epoch=5, **kw)
    assert len(wrapped) == 5
    np.testing.assert_array_equal(wrapped[2][1], wrapped[0][1])  # wraps after 2 full batches
    evaluation = numpy_data.SegmentationBatches(source, image_size=16, batch_size=4, limit=9)
    assert len(evaluation) == 3 and evaluation[2][0].shape == (1, 16, 16, 3)
    assert evaluation.image_ids()[:2] == ["#0", "#1"]
    with pytest.raises(ValueError, match="larger than the training split"):
        numpy_data.SegmentationBatches(source, image_size=16, batch_size=11, shuffle=True)


def test_file_batches_match_tf_data(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(3):  # PNG: decoded bit-identically by Pillow and TensorFlow
        image, mask = _self_masked_image(size=40 + 8 * i, seed=i)
        tf.io.write_file(str(images / f"c{i}.png"), tf.io.encode_png(image.astype(np.uint8)))
        tf.io.write_file(str(masks / f"c{i}.png"), tf.io.encode_png((mask * 255).astype(np.uint8)))
    pairs = files.folder_pairs(images, masks)
    expected = next(iter(data.make_dataset(pairs, 24, 3, cache=False)))
    batches = numpy_data.SegmentationBatches(files.FileSource(pairs), image_size=24, batch_size=3)
    x, y = batches[0]
    np.testing.assert_allclose(x, expected[0].numpy(), atol=1e-3)
    np.testing.assert_array_equal(y, expected[1].numpy())
    assert batches.image_ids() == ["c0", "c1", "c2"]


def _prepare(data_dir: Path, file_format: str, manual_dir: Path = DUMMY_ISIC2017) -> None:
    import tensorflow_datasets as tfds

    from tfds_builders.isic2017 import isic2017_dataset_builder as b

    builder = b.Builder(config="segmentation_512", data_dir=str(data_dir), file_format=file_format)
    builder.download_and_prepare(
        file_format=file_format,
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)),
    )


def _split(data_dir: Path, file_format: str, split: str = "train", limit: int = 0):
    builder = files.prepared_builder(CONFIG, str(data_dir), None, file_format)
    n = builder.info.splits[split].num_examples
    rows = tuple(range(min(n, limit) if limit else n))
    return files.SegmentationSplit(f"{CONFIG}:{split}", rows, None, CONFIG, split, str(data_dir))


def test_tfds_array_record_batches_match_tf_data_tfrecord(tmp_path):
    for fmt in ("array_record", "tfrecord"):
        _prepare(tmp_path / fmt, fmt)
    source = _split(tmp_path / "array_record", "array_record").as_data_source()
    batches = numpy_data.SegmentationBatches(source, image_size=32, batch_size=8)
    x, y = batches[0]
    tf_split = _split(tmp_path / "tfrecord", "tfrecord")
    ex, ey = (t.numpy() for t in next(iter(data.eval_dataset(tf_split, 32, 8))))
    assert x.shape == ex.shape == (len(source), 32, 32, 3)
    # Same examples in the same order, the same stored JPEG decoded with the accurate IDCT on
    # both paths (Pillow, tf.io.decode_jpeg INTEGER_ACCURATE); masks are PNG and match exactly.
    diff = np.abs(x - ex)
    assert diff.mean() < 2.5 and diff.max() < 12, (diff.mean(), diff.max())
    pairwise = np.abs(x[:, None] - ex[None]).mean(axis=(2, 3, 4))
    np.testing.assert_array_equal(pairwise.argmin(axis=1), np.arange(len(x)))
    np.testing.assert_array_equal(y, ey)
    assert all(i.startswith("ISIC_") for i in batches.image_ids())
    # The tf.data path names its images too (per_image.csv, grid.png), in the same order.
    tf_ids = data.image_ids(tf_split)
    assert tf_ids == list(batches.image_ids())
    assert data.image_ids(_split(tmp_path / "tfrecord", "tfrecord", limit=2)) == tf_ids[:2]
    with pytest.raises(
        ValueError, match="is prepared as tfrecord, but random access .the NumPy pipeline"
    ):
        _split(tmp_path / "tfrecord", "array_record")
    with pytest.raises(ValueError, match="ArrayRecord, which tf.data cannot read"):
        data.eval_dataset(_split(tmp_path / "array_record", "tfrecord"), 32, 8)
    with pytest.raises(DatasetNotPreparedError, match="not prepared in .*nowhere"):
        _split(tmp_path / "nowhere", "array_record")


JAX_CLI = HIDE_TENSORFLOW + textwrap.dedent(
    """
    import contextlib, io, json, math
    from pathlib import Path
    import keras
    from tfmelanoma import segment

    tfds_dir, out = sys.argv[1], Path(sys.argv[2])
    # The models' CIELAB layer is keras.ops only: on JAX it must match scikit-image too.
    import numpy as np
    from skimage.color import rgb2lab
    from tfmelanoma.models.segmentation import ColourSpace

    rgb = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype("float32")
    lab = keras.ops.convert_to_numpy(ColourSpace("lab")(rgb))
    ref = rgb2lab(rgb / 255.0)
    ref = np.stack([ref[..., 0] / 100, (ref[..., 1] + 128) / 255, (ref[..., 2] + 128) / 255], -1)
    np.testing.assert_allclose(lab, ref, atol=2e-3)
    data = ["--data", "tfds:isic2017/segmentation_512", "--tfds-data-dir", tfds_dir]
    def refused(argv, needle):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert segment.main(argv) == 2, argv
        assert needle in err.getvalue(), err.getvalue()

    refused(["train", "--model", "sm_unet", "--out", str(out / "sm"), *data],
            "needs KERAS_BACKEND=tensorflow")
    assert not (out / "sm").exists()
    assert segment.main([
        "train", "--model", "attention_residual_unet", "--base-filters", "4", "--depth", "2",
        "--image-size", "32", "--batch-size", "2", "--epochs", "2", "--bn-momentum", "0.9",
        "--set", "data.test=validation", "--out", str(out / "run"), *data,
    ]) == 0
    assert segment.main([
        "evaluate", "--model", str(out / "run" / "model.keras"), "--split", "validation",
        "--out", str(out / "eval"), *data,
    ]) == 0
    scores = json.loads((out / "eval" / "metrics.json").read_text())
    assert all(math.isfinite(scores[k]) for k in ("jaccard", "dice", "thresholded_jaccard"))
    assert segment.main([
        "predict", "--model", str(out / "run" / "model.keras"), "--images", sys.argv[3],
        "--out", str(out / "masks"), "--crop-dir", str(out / "crops"),
    ]) == 0
    refused(["train", "--pipeline", "tf.data", "--out", str(out / "tf"), *data],
            "--pipeline tf.data needs TensorFlow")
    print("BACKEND", keras.backend.backend(), "TF_LOADED", "tensorflow" in sys.modules)
    """
)


@pytest.mark.slow
def test_cli_trains_and_evaluates_on_jax_without_tensorflow(tmp_path):
    from PIL import Image

    _prepare(tmp_path / "tfds", "array_record")
    images = tmp_path / "images"
    images.mkdir()
    photo = DUMMY_ISIC2017 / "ISIC-2017_Validation_Data" / "ISIC_0001769.jpg"
    (images / photo.name).write_bytes(photo.read_bytes())
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(
        [sys.executable, "-c", JAX_CLI, str(tmp_path / "tfds"), str(tmp_path), str(images)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "BACKEND jax TF_LOADED False" in out.stdout
    run = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert run["backend"] == "jax" and run["pipeline"] == "numpy" and run["task"] == "segmentation"
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header + 2 epochs
    # Validation scores of training and of `evaluate` are the same model on the same images.
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    scores = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert scores["n_images"] == summary["n_images"] == 2
    assert scores["jaccard"] == pytest.approx(summary["jaccard"], abs=1e-6)
    rows = (tmp_path / "eval" / "per_image.csv").read_text().splitlines()
    assert len(rows) == 3 and all(r.startswith("ISIC_") for r in rows[1:])
    assert (tmp_path / "eval" / "grid.png").stat().st_size > 5_000
    # predict ran TF-free too: a 0/255 mask at the photo's own size, and a crop.
    mask = np.asarray(Image.open(tmp_path / "masks" / "ISIC_0001769_segmentation.png"))
    assert mask.shape == Image.open(photo).size[::-1] and set(np.unique(mask)) <= {0, 255}
    assert (tmp_path / "crops" / "ISIC_0001769.png").is_file()


@pytest.mark.slow
def test_tfds_cli_on_real_isic2017_tf_backend(shared_data, tmp_path):
    """`--data tfds:` on TensorFlow: real ISIC 2017 as ArrayRecord, train, evaluate, cross-check."""
    import csv

    from tfmelanoma import segment

    _prepare(tmp_path / "tfds", "array_record", manual_dir=shared_data / "isic2017")
    tfds_args = ["--data", f"tfds:{CONFIG}", "--tfds-data-dir", str(tmp_path / "tfds")]
    run = tmp_path / "run"
    segment.main(
        ["train", "--model", "unet", "--base-filters", "8", "--depth", "3", "--image-size", "64",
         "--batch-size", "8", "--limit", "96", "--epochs", "1", "--val-limit", "16",
         "--bn-momentum", "0.9", "--out", str(run), *tfds_args]
    )  # fmt: skip
    config = json.loads((run / "metrics.json").read_text())
    assert config["pipeline"] == "numpy"  # ArrayRecord: tf.data cannot read it
    assert json.loads((run / "summary.json").read_text())["n_images"] == 16
    model = str(run / "model.keras")
    segment.main(["evaluate", "--model", model, "--out", str(tmp_path / "eval"), *tfds_args])
    # The same model on a TFRecord copy prepared from the official files, through tf.data,
    # scores the same images alike.
    segment.main(
        ["evaluate", "--model", model, "--data", "isic2017", "--data-dir",
         str(shared_data / "isic2017"), "--tfds-data-dir", str(tmp_path / "tfds_tfrecord"),
         "--out", str(tmp_path / "eval_files")]
    )  # fmt: skip
    scores = {}
    for name in ("eval", "eval_files"):
        with open(tmp_path / name / "per_image.csv") as f:
            scores[name] = {r["image_id"]: float(r["jaccard"]) for r in csv.DictReader(f)}
        summary = json.loads((tmp_path / name / "metrics.json").read_text())
        assert summary["n_images"] == 150 and np.isfinite(summary["thresholded_jaccard"])
    assert scores["eval"].keys() == scores["eval_files"].keys()
    ids = sorted(scores["eval"])
    a = np.array([scores["eval"][i] for i in ids])
    b = np.array([scores["eval_files"][i] for i in ids])
    # Both decode the builder's stored JPEGs with the accurate IDCT; only resizing may differ.
    assert abs(a.mean() - b.mean()) < 0.01 and np.median(np.abs(a - b)) < 0.01
