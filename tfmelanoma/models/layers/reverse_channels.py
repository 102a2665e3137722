"""`ReverseChannels`: RGB → BGR inside the model (Caffe-style ImageNet preprocessing)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tfmelanoma")
class ReverseChannels(keras.layers.Layer):
    """Reverses the order of the last axis (RGB ↔ BGR).

    VGG16/19 and ResNet50/101/152 ImageNet weights expect BGR minus the ImageNet mean ("caffe"
    mode of `keras.applications.imagenet_utils.preprocess_input`). No built-in layer flips
    channels, and `Lambda` breaks `safe_mode` loading, hence this weightless layer.

    Args:
        **kwargs: standard layer arguments (name, dtype, ...).
    """

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape
