"""Residual decoder block of AER-Net: two 3x3 conv + BN + ReLU with a shortcut."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tfmelanoma")
class ResidualBlock(keras.layers.Layer):
    """`relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x))` (AER-Net Figure 4, He et al. 2016).

    The shortcut is the identity when the channel count is unchanged, otherwise a 1x1 conv + BN
    projection so the two branches can be added.

    Args:
        filters: output channels.
        kernel_size: size of the two convolutions (3 in the paper).
        bn_momentum: BatchNormalization momentum (Keras default 0.99; lower it for runs of
            only a few hundred steps, or the moving statistics lag behind the weights).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call args:
        inputs: (B, H, W, C) features.
        training: BatchNormalization mode.

    Returns:
        (B, H, W, filters) features.
    """

    def __init__(self, filters: int, kernel_size: int = 3, bn_momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.bn_momentum = float(bn_momentum)
        policy = self.dtype_policy
        self.conv1 = keras.layers.Conv2D(
            filters, kernel_size, padding="same", use_bias=False, dtype=policy, name="conv1"
        )
        self.bn1 = keras.layers.BatchNormalization(
            momentum=self.bn_momentum, dtype=policy, name="bn1"
        )
        self.conv2 = keras.layers.Conv2D(
            filters, kernel_size, padding="same", use_bias=False, dtype=policy, name="conv2"
        )
        self.bn2 = keras.layers.BatchNormalization(
            momentum=self.bn_momentum, dtype=policy, name="bn2"
        )
        self.shortcut_conv = None
        self.shortcut_bn = None

    def build(self, input_shape):
        self.conv1.build(input_shape)
        out_shape = (*input_shape[:3], self.filters)
        self.bn1.build(out_shape)
        self.conv2.build(out_shape)
        self.bn2.build(out_shape)
        if input_shape[-1] != self.filters:
            self.shortcut_conv = keras.layers.Conv2D(
                self.filters, 1, use_bias=False, dtype=self.dtype_policy, name="shortcut_conv"
            )
            self.shortcut_bn = keras.layers.BatchNormalization(
                momentum=self.bn_momentum, dtype=self.dtype_policy, name="shortcut_bn"
            )
            self.shortcut_conv.build(input_shape)
            self.shortcut_bn.build(out_shape)
        self.built = True

    def call(self, inputs, training=None):
        y = keras.ops.relu(self.bn1(self.conv1(inputs), training=training))
        y = self.bn2(self.conv2(y), training=training)
        shortcut = inputs
        if self.shortcut_conv is not None:
            shortcut = self.shortcut_bn(self.shortcut_conv(inputs), training=training)
        return keras.ops.relu(y + shortcut)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "bn_momentum": self.bn_momentum,
            }
        )
        return config
