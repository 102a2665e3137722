"""Knowledge distillation (`model.teacher`): the loss is alpha * CE + (1 - alpha) * T^2 * KL on the
softened outputs, the teacher sees the augmented images the student trains on, validation sees the
student alone, best.keras is the student alone, and a distilled run resumes exactly."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from tfmelanoma.config import AugmentConfig, ConfigError, load_config
from tfmelanoma.data import device_augment
from tfmelanoma.training import checkpoints, distill, runner, tasks


def _tiny(seed: int, size: int = 8, classes: int = 2, name: str | None = None) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(classes, activation="softmax" if classes > 1 else "sigmoid"),
        ],
        name=name,
    )


def _reference_soft(t: np.ndarray, s: np.ndarray, temperature: float) -> float:
    """The paper's term, written out in NumPy from logits log p."""

    def soften(p):
        z = np.log(p) / temperature
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    pt, ps = soften(t), soften(s)
    return float(temperature**2 * np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1)))


def test_loss_is_the_weighted_hard_and_soft_terms():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 8, 8, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 6)]
    student, teacher = _tiny(1), _tiny(2)
    model = distill.Distiller(student, teacher, alpha=0.3, temperature=4.0)
    model.compile(loss=keras.losses.CategoricalCrossentropy())
    s, t = np.asarray(student(x)), np.asarray(teacher(x))
    hard = float(keras.losses.CategoricalCrossentropy()(y, s))
    soft = _reference_soft(t, s, 4.0)
    got = float(model.compute_loss(x, y, student(x), training=True))
    assert got == pytest.approx(0.3 * hard + 0.7 * soft, rel=1e-5)
    assert float(model.compute_loss(x, y, student(x), training=False)) == pytest.approx(hard)
    # A student that copies the teacher pays no soft loss; a sigmoid teacher counts as 2 classes.
    assert float(distill.soft_loss(t, t, 4.0)) == pytest.approx(0.0, abs=1e-6)
    sig = np.array([[0.9], [0.2]], np.float32)
    two = np.array([[0.1, 0.9], [0.8, 0.2]], np.float32)
    assert float(distill.soft_loss(sig, two, 2.0)) == pytest.approx(0.0, abs=1e-6)


def test_only_the_student_trains_and_the_teacher_sees_the_augmented_images():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 10, 10, 3)).astype(np.uint8)
    params = device_augment.sample_params(rng, 4, AugmentConfig(), 8)
    student = device_augment.training_model(_tiny(3), AugmentConfig(), 8)
    teacher = _tiny(4, size=16)  # another input size: resized for it
    model = distill.Distiller(student, teacher, alpha=0.5, temperature=2.0)
    x = {device_augment.IMAGE_KEY: images, device_augment.PARAMS_KEY: params}
    seen = model._teacher_images(x)
    augmented = device_augment.augment_layer(AugmentConfig(), 8)(images, params, training=True)
    want = keras.ops.image.resize(augmented, (16, 16), interpolation="bilinear")
    np.testing.assert_allclose(np.asarray(seen), np.asarray(want), atol=1e-4)
    before = [w.copy() for w in teacher.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
    y = np.eye(2, dtype=np.float32)[[0, 1, 1, 0]]
    student_before = [w.copy() for w in student.get_weights()]
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for a, b in zip(teacher.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(student.get_weights(), student_before, strict=True)
    )
    assert len(model.trainable_weights) == len(student.trainable_weights)
    assert device_augment.inner_model(model) is student.layers[-1]


def test_bad_teacher_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="model.distill_alpha=1.5"):
        load_config("smoke", ["model.distill_alpha=1.5"])
    with pytest.raises(ConfigError, match="model.distill_temperature=0"):
        load_config("smoke", ["model.distill_temperature=0"])
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        distill.load_teacher(tmp_path / "nowhere")


def test_several_teachers_teach_as_their_mean(tmp_path):
    """`model.teacher=a, b`: one frozen teacher whose output is the mean of the members', each
    fed at its own input size; members that disagree on their outputs are refused by name."""
    # Two runs of one architecture: the same model name (a real case: two Lite0 runs).
    a, b = _tiny(5, size=16, name="same"), _tiny(6, size=8, name="same")
    three = _tiny(7, size=8, classes=3)
    for name, model in (("a", a), ("b", b), ("three", three)):
        model.save(tmp_path / f"{name}.keras")
    teacher = distill.load_teacher(f"{tmp_path / 'a.keras'}, {tmp_path / 'b.keras'}")
    assert teacher.input_shape[1:3] == (16, 16) and not teacher.trainable_weights
    x = np.random.default_rng(2).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    small = keras.layers.Resizing(8, 8, interpolation="bilinear")(x)
    want = (np.asarray(a(x)) + np.asarray(b(small))) / 2
    np.testing.assert_allclose(np.asarray(teacher(x)), want, atol=1e-6)
    assert [f.name for f in distill.teacher_files(f"{tmp_path}/a.keras,{tmp_path}/b.keras")] == [
        "a.keras", "b.keras",
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"same number of outputs; .* outputs \[2, 3\]"):
        distill.load_teacher(f"{tmp_path / 'a.keras'},{tmp_path / 'three.keras'}")
    with pytest.raises(FileNotFoundError, match="empty name"):
        distill.load_teacher(f"{tmp_path / 'a.keras'},")
    cfg = load_config("smoke", [f"model.teacher={tmp_path / 'a.keras'}, {tmp_path / 'nowhere'}"])
    with pytest.raises(ValueError, match="nowhere"):  # before any training starts
        tasks.ClassificationTask().check(cfg)


@pytest.mark.slow
def test_an_ensemble_teacher_trains_a_student(tmp_path):
    for seed, size in ((8, 32), (9, 16)):
        _tiny(seed, size=size, name="same").save(tmp_path / f"t{seed}.keras")
    teachers = f"{tmp_path / 't8.keras'}, {tmp_path / 't9.keras'}"
    result = runner.train(
        load_config("smoke", ["run.epochs=1", f"model.teacher={teachers}"]), tmp_path / "run",
        verbose=0,
    )  # fmt: skip
    assert result.metrics["teacher"] == teachers
    assert not isinstance(
        keras.models.load_model(tmp_path / "run" / "best.keras"), distill.Distiller
    )


@pytest.mark.slow
def test_distilled_run_saves_the_student_alone_and_resumes_exactly(tmp_path, monkeypatch):
    teacher_run = tmp_path / "teacher"
    runner.train(load_config("smoke", ["run.epochs=1"]), teacher_run, verbose=0)
    cfg = load_config(
        "smoke", ["run.epochs=3", f"model.teacher={teacher_run}", "model.distill_alpha=0.5"]
    )
    whole = runner.train(cfg, tmp_path / "whole", verbose=0)
    best = keras.models.load_model(tmp_path / "whole" / "best.keras")
    assert not isinstance(best, distill.Distiller)
    assert best.count_params() == whole.metrics["params"]
    teacher_params = keras.models.load_model(teacher_run / "best.keras").count_params()
    assert best.count_params() == teacher_params  # same architecture here, not the pair
    assert whole.metrics["teacher"] == str(teacher_run)

    original = checkpoints.ResumableCheckpoint.on_epoch_end

    def stop_after_first(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.ResumableCheckpoint, "on_epoch_end", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        runner.train(cfg, tmp_path / "cut", verbose=0)
    monkeypatch.setattr(checkpoints.ResumableCheckpoint, "on_epoch_end", original)
    runner.train(cfg, tmp_path / "cut", resume=True, verbose=0)
    a = (tmp_path / "whole" / "history.csv").read_text().splitlines()
    b = (tmp_path / "cut" / "history.csv").read_text().splitlines()
    assert len(a) == len(b) == 4
    for row_a, row_b in zip(a[1:], b[1:], strict=True):
        np.testing.assert_allclose(
            [float(v) for v in row_a.split(",")], [float(v) for v in row_b.split(",")], atol=1e-5
        )
    got = json.loads((tmp_path / "cut" / "metrics.json").read_text())["test"]["auc_roc"]
    assert got == pytest.approx(whole.metrics["test"]["auc_roc"], abs=1e-6)
    # Distillation changes training: the same run without a teacher ends elsewhere (val_loss is
    # the student's own cross-entropy in both).
    runner.train(load_config("smoke", ["run.epochs=3"]), tmp_path / "plain", verbose=0)

    def val_loss(run):
        rows = (tmp_path / run / "history.csv").read_text().splitlines()
        col = rows[0].split(",").index("val_loss")
        return [float(r.split(",")[col]) for r in rows[1:]]

    assert not np.allclose(val_loss("plain"), val_loss("whole"), atol=1e-4)
