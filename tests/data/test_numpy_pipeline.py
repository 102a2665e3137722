"""The TF-free NumPy pipeline: same resize as tf.data, seeded augmentation, no TensorFlow import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests.tf_hidden import HIDE_TENSORFLOW
from tfmelanoma.config import AugmentConfig
from tfmelanoma.data import image_ops
from tfmelanoma.data import numpy_pipeline as npp


@pytest.mark.parametrize("shape, size", [((37, 53, 3), 64), ((128, 96, 3), 32), ((20, 20, 3), 20)])
def test_resize_matches_tensorflow(shape, size):
    image = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    expected = tf.image.resize(image, (size, size), method="bilinear", antialias=False).numpy()
    np.testing.assert_allclose(image_ops.resize_np(image, size), expected, atol=1e-3)


def test_augment_shape_range_and_seed():
    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    cfg = AugmentConfig(cutout=0.2)
    a = npp.augment(image, np.random.default_rng(5), cfg)
    b = npp.augment(image, np.random.default_rng(5), cfg)
    assert a.shape == image.shape and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 255
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, npp.augment(image, np.random.default_rng(6), cfg))
    np.testing.assert_array_equal(npp.augment(image, None, AugmentConfig(enabled=False)), image)


def test_batches_from_a_sequence_are_seeded_per_epoch():
    rng = np.random.default_rng(0)
    source = [
        {"image": rng.integers(0, 255, (40, 30, 3), dtype=np.uint8), "label": i % 2}
        for i in range(10)
    ]
    train = npp.NumpyBatches(
        source, image_size=16, batch_size=4, num_classes=2, augment_config=AugmentConfig()
    )
    assert len(train) == 2
    x, y = train[0]
    assert x.shape == (4, 16, 16, 3) and y.shape == (4, 2)
    again = npp.NumpyBatches(
        source, image_size=16, batch_size=4, num_classes=2, augment_config=AugmentConfig()
    )
    np.testing.assert_array_equal(again[0][0], x)
    train.set_epoch(1)
    resumed = npp.NumpyBatches(
        source,
        image_size=16,
        batch_size=4,
        num_classes=2,
        augment_config=AugmentConfig(),
        start_epoch=1,
    )
    np.testing.assert_array_equal(resumed[1][0], train[1][0])
    evaluation = npp.NumpyBatches(source, image_size=16, batch_size=4, num_classes=1)
    assert len(evaluation) == 3 and evaluation[2][1].shape == (2, 1)
    with pytest.raises(ValueError, match="empty"):
        npp.NumpyBatches([], image_size=16, batch_size=4, num_classes=2)


TF_FREE = HIDE_TENSORFLOW + textwrap.dedent(
    """
    import numpy as np
    from tfmelanoma.config import AugmentConfig
    from tfmelanoma.data.numpy_pipeline import NumpyBatches
    from tfmelanoma.datasets import load_combination

    comb = load_combination(train=["isic_archive/sample"], test="isic_archive/sample", data_dir=sys.argv[1])
    train = NumpyBatches(comb.as_data_source("train"), image_size=32, batch_size=8, num_classes=2,
                         augment_config=AugmentConfig())
    x, y = train[0]
    assert x.shape == (8, 32, 32, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    assert y.shape == (8, 2) and set(y.sum(axis=1)) == {1.0}
    test = NumpyBatches(comb.as_data_source("test"), image_size=32, batch_size=16, num_classes=2)
    images = np.concatenate([test[i][0] for i in range(len(test))])
    np.save(sys.argv[2], images)

    # And a registry model trains on these batches on the JAX backend.
    import keras
    from tfmelanoma.models import create_model

    model = create_model("meshnet", input_shape=(32, 32, 3))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    history = model.fit(train, epochs=1, steps_per_epoch=3, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    print("BACKEND", keras.backend.backend())
    print("TF_LOADED", "tensorflow" in sys.modules, "TRAIN", len(comb.train), "TEST", len(images))
    """
)


@pytest.mark.slow
def test_tf_free_batches_match_tf_data_and_train_on_jax(tmp_path):
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401
    from tfmelanoma.data import pipeline
    from tfmelanoma.datasets import load_combination

    data_dir = str(tmp_path / "tfds")
    for file_format in ("array_record", "tfrecord"):
        builder = tfds.builder(
            "isic_archive/sample", data_dir=data_dir + "_" + file_format, file_format=file_format
        )
        builder.download_and_prepare(file_format=file_format)
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(
        [sys.executable, "-c", TF_FREE, data_dir + "_array_record", str(tmp_path / "test.npy")],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "TF_LOADED False" in out.stdout and "BACKEND jax" in out.stdout
    # The same test split through tf.data gives the same pixels (same split, order and resize).
    comb = load_combination(
        train=["isic_archive/sample"], test="isic_archive/sample", data_dir=data_dir + "_tfrecord"
    )
    ds = pipeline.eval_dataset(
        comb.as_tf_dataset("test"), image_size=32, batch_size=16, num_classes=2
    )
    expected = np.concatenate([x.numpy() for x, _ in ds])
    np.testing.assert_allclose(np.load(tmp_path / "test.npy"), expected, atol=1e-2)


def _source(n: int = 12) -> list[dict]:
    return [{"image": np.full((8, 8, 3), k, np.uint8), "label": k % 2} for k in range(n)]


def test_class_weights_become_sample_weights_and_steps_wrap():
    batches = npp.NumpyBatches(
        _source(), image_size=8, batch_size=4, num_classes=2, augment_config=AugmentConfig(),
        class_weight={0: 0.5, 1: 2.0}, steps_per_epoch=5,
    )  # fmt: skip
    assert len(batches) == 5  # more steps than one pass (3 batches): the order wraps around
    x, y, w = batches[4]
    np.testing.assert_array_equal(w, np.where(y[:, 1] == 1, 2.0, 0.5))
    np.testing.assert_array_equal(x, batches[1][0])


def test_padding_splits_the_last_evaluation_batch_evenly():
    batches = npp.NumpyBatches(
        _source(11), image_size=8, batch_size=4, num_classes=1, pad_to_multiple=2
    )
    assert len(batches) == 3
    x, y, w = batches[2]  # 3 real examples + 1 zero-weight copy
    assert x.shape[0] == 4 and w.tolist() == [1, 1, 1, 0]
    np.testing.assert_array_equal(x[3], x[2])
    assert batches[0][2].tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("workers", [1, 3])
def test_fit_reads_each_epoch_by_its_number_so_resume_sees_the_same_batches(workers):
    import keras

    def batches_read(start_epoch: int) -> list[tuple[int, int]]:
        read = []

        class Recording(npp.NumpyBatches):
            def __getitem__(self, index):
                read.append((self.epoch, index))
                return super().__getitem__(index)

        batches = Recording(
            _source(), image_size=8, batch_size=4, num_classes=2, augment_config=AugmentConfig(),
            start_epoch=start_epoch, workers=workers,
        )  # fmt: skip
        model = keras.Sequential(
            [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")]
        )
        model.compile(loss="categorical_crossentropy")
        model.fit(
            batches, epochs=3, initial_epoch=start_epoch, shuffle=False, verbose=0,
            callbacks=[batches.epoch_callback()],
        )  # fmt: skip
        return read

    # Keras may read batches first to learn the data's structure; then every epoch in order.
    expected = [(e, i) for e in range(3) for i in range(3)]
    assert batches_read(0)[-9:] == expected
    assert batches_read(1)[-6:] == expected[3:]


@pytest.mark.parametrize("shape,size", [((10, 13, 3), 32), ((37, 224, 3), 224), ((1, 5, 3), 16)])
def test_pillow_upsampling_equals_the_numpy_bilinear(shape, size):
    image = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    np.testing.assert_allclose(
        image_ops.resize_antialiased_np(image, size), image_ops.resize_np(image, size), atol=1e-3
    )


def test_resize_to_the_same_size_is_the_identity():
    image = np.random.default_rng(0).integers(0, 255, (24, 24, 3), dtype=np.uint8)
    out = image_ops.resize_np(image, 24)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image)
