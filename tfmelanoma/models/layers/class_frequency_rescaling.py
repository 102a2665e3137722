"""`ClassFrequencyRescaling`: post-hoc inverse-class-frequency rescaling of probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import keras


@keras.saving.register_keras_serializable(package="tfmelanoma")
class ClassFrequencyRescaling(keras.layers.Layer):
    """Divides each class probability by its training frequency and renormalises.

    The multi-class paper rescales predicted probabilities by the inverse class frequency of the
    training set so that rare classes (e.g. melanoma among nevi) are not drowned by the prior:
    `p'_k = (p_k / f_k) / sum_j (p_j / f_j)`. For a single sigmoid output P(class 1), pass
    the two frequencies (f_0, f_1); the output stays (B, 1).

    Args:
        class_frequencies: training frequencies or counts per class (normalised internally),
            length K (softmax input) or 2 (sigmoid input).
        **kwargs: standard layer arguments.
    """

    def __init__(self, class_frequencies: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        freqs = [float(f) for f in class_frequencies]
        if len(freqs) < 2 or min(freqs) <= 0:
            raise ValueError(
                f"class_frequencies must hold >= 2 positive frequencies or counts, got {class_frequencies!r}"
            )
        self.class_frequencies = freqs

    def build(self, input_shape):
        k = input_shape[-1]
        n = len(self.class_frequencies)
        if k is not None and not (k == n or (k == 1 and n == 2)):
            raise ValueError(
                f"{self.name}: input has {k} probabilities but {n} class_frequencies were given "
                "(expected K frequencies for K softmax outputs, or 2 for one sigmoid output)"
            )
        super().build(input_shape)

    def call(self, inputs):
        freqs = keras.ops.convert_to_tensor(self.class_frequencies, dtype=inputs.dtype)
        freqs = freqs / keras.ops.sum(freqs)
        if inputs.shape[-1] == 1:
            positive = inputs / freqs[1]
            negative = (1.0 - inputs) / freqs[0]
            return positive / (positive + negative)
        weighted = inputs / freqs
        return weighted / keras.ops.sum(weighted, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"class_frequencies": list(self.class_frequencies)})
        return config
