"""Knowledge distillation in the training step: a small student learns from the labels and from a
trained teacher's softened outputs on the same augmented images (Hinton, Vinyals and Dean 2015,
"Distilling the Knowledge in a Neural Network").

    loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T)

where `p_T = softmax(log p / T)` softens a model's probabilities (the toolkit's models output
probabilities; their logarithms are the logits up to a per-example constant, which the softmax
ignores). The T^2 factor keeps the soft term's gradients at the scale of the hard term's when T
changes (the paper's recommendation). Validation and evaluation see the student alone: the
validation loss is the plain cross-entropy, so `run.monitor=val_loss` compares epochs by the
student's own fit.

Online, not from stored teacher outputs: the teacher sees exactly the augmented batch the student
trains on (with augmentation in the step, `device_augment`, the same warped pixels), so no
per-image table has to follow the pipelines' orders. Its cost is one teacher forward pass a step.

Why by hand: Keras 3 has no distillation API (keras.io's "Knowledge Distillation" example is a
`Distiller` model subclass of this shape); this one also composes with the toolkit's
training-time wrappers and checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import ops

from tfmelanoma.data import device_augment

_EPS = 1e-7


def teacher_file(path: str | Path) -> Path:
    """The teacher's model file: `<run folder>/best.keras`, or `path` itself when it is a
    `.keras` file.

    Raises:
        FileNotFoundError: neither exists (naming what was looked for).
    """
    path = Path(path).expanduser()
    if (path / "best.keras").is_file():
        return path / "best.keras"
    if path.is_file() and path.suffix == ".keras":
        return path
    raise FileNotFoundError(
        f"model.teacher={str(path)!r}: no such run folder with best.keras or .keras file"
    )


def teacher_files(spec: str | Path) -> list[Path]:
    """`model.teacher`'s model files: one run folder / .keras file, or several separated by
    commas (an ensemble teacher). Raises FileNotFoundError as `teacher_file` does."""
    parts = [p.strip() for p in str(spec).split(",")] if isinstance(spec, str) else [spec]
    if not all(parts):
        raise FileNotFoundError(f"model.teacher={str(spec)!r}: an empty name in the list")
    return [teacher_file(p) for p in parts]


def load_teacher(spec: str | Path) -> keras.Model:
    """The teacher (`teacher_files`), frozen, without its optimizer.

    Several files make one ensemble teacher: the mean of the members' probabilities (the
    ensemble `evaluate` reports with `--model a --model b`), each member fed at its own input
    size (bilinear resize from the largest), so runs at 128 and 224 px can teach together.

    Raises:
        FileNotFoundError: a member is missing.
        ValueError: the members disagree on the number of outputs, or one has no fixed size.
    """
    files = teacher_files(spec)
    members = [keras.models.load_model(f, compile=False) for f in files]
    for member in members:
        member.trainable = False
    if len(members) == 1:
        return members[0]
    sizes = [tuple(m.input_shape[1:3]) for m in members]
    widths = [m.output_shape[-1] for m in members]
    if None in {d for size in sizes for d in size} or len(set(widths)) > 1:
        raise ValueError(
            f"model.teacher={str(spec)!r}: an ensemble teacher's members need fixed input sizes "
            f"and the same number of outputs; got sizes {sizes} and outputs {widths} "
            f"({', '.join(map(str, files))})"
        )
    size = max(sizes, key=lambda hw: hw[0] * hw[1])
    image = keras.Input((*size, 3), name="image")
    outputs = []
    for i, (member, hw) in enumerate(zip(members, sizes, strict=True)):
        # Runs of one architecture share a model name, which one functional model cannot hold
        # twice: each member goes in under a wrapper named for its place in the list.
        inner = keras.Input((*hw, 3))
        wrapped = keras.Model(inner, member(inner), name=f"member_{i}")
        x = image if hw == size else keras.layers.Resizing(*hw, interpolation="bilinear")(image)
        outputs.append(wrapped(x))
    teacher = keras.Model(image, keras.layers.Average()(outputs), name="teacher_ensemble")
    teacher.trainable = False
    return teacher


def _two_class(p):
    """(B, 1) sigmoid outputs -> (B, 2) probabilities; (B, K) unchanged."""
    if p.shape[-1] == 1:
        return ops.concatenate([1.0 - p, p], axis=-1)
    return p


def soften(p, temperature: float):
    """softmax(log p / T): the probabilities a temperature-T softmax over the logits gives."""
    return ops.softmax(ops.log(ops.clip(_two_class(p), _EPS, 1.0)) / temperature, axis=-1)


def soft_loss(teacher_probs, student_probs, temperature: float, sample_weight=None):
    """T^2 * KL(teacher_T || student_T), averaged over the batch (weighted by `sample_weight`)."""
    t = soften(ops.stop_gradient(teacher_probs), temperature)
    s = soften(student_probs, temperature)
    kl = ops.sum(t * (ops.log(ops.clip(t, _EPS, 1.0)) - ops.log(ops.clip(s, _EPS, 1.0))), axis=-1)
    if sample_weight is not None:
        w = ops.cast(ops.reshape(sample_weight, (-1,)), kl.dtype)
        kl = ops.sum(kl * w) / ops.maximum(ops.sum(w), _EPS)
    else:
        kl = ops.mean(kl)
    return (temperature**2) * kl


@keras.saving.register_keras_serializable(package="tfmelanoma")
class Distiller(keras.Model):
    """What `fit` trains when `model.teacher` is set: the student, plus the teacher's soft loss.

    Args:
        student: the model being trained (or its training-time wrapper with augmentation in
            the step: the teacher then sees the wrapper's augmented images). `inner` gives it
            back; `device_augment.inner_model` unwraps it for best.keras.
        teacher: a trained, frozen model with as many classes (1 sigmoid output counts as 2).
        alpha: weight of the hard-label loss (1 - alpha for the soft loss).
        temperature: T > 0.
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model,
        alpha: float = 0.5,
        temperature: float = 2.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.built = student.built

    @property
    def inner(self) -> keras.Model:
        return self.student

    def build(self, input_shape=None):
        self.built = True  # student and teacher are built; nothing of its own

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def _teacher_images(self, x):
        """The images the student saw: augmented in the step when the student wraps that."""
        if isinstance(x, dict):
            augment = next(
                layer
                for layer in self.student.layers
                if isinstance(layer, device_augment.DeviceAugment)
            )
            x = augment(x[device_augment.IMAGE_KEY], x[device_augment.PARAMS_KEY], training=True)
        size = self.teacher.input_shape[1:3]
        if None not in size and tuple(x.shape[1:3]) != tuple(size):
            x = ops.image.resize(x, size, interpolation="bilinear")
        return x

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        hard = super().compute_loss(x, y, y_pred, sample_weight, training)
        if not training:  # validation: the student's own loss
            return hard
        teacher = self.teacher(self._teacher_images(x), training=False)
        soft = soft_loss(teacher, y_pred, self.temperature, sample_weight)
        return self.alpha * hard + (1.0 - self.alpha) * ops.cast(soft, hard.dtype)

    def get_config(self):
        return {
            "student": keras.saving.serialize_keras_object(self.student),
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "alpha": self.alpha,
            "temperature": self.temperature,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        student = keras.saving.deserialize_keras_object(config.pop("student"))
        teacher = keras.saving.deserialize_keras_object(config.pop("teacher"))
        return cls(student, teacher, **config)
