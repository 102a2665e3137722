"""Additive attention gate (Oktay et al. 2018, "Attention U-Net") for U-Net skip connections."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tfmelanoma")
class AttentionGate(keras.layers.Layer):
    """Weights a skip connection by a learned attention map computed from a gating signal.

    `q = relu(W_x * x + W_g * g + b)`, `alpha = sigmoid(psi * q)`, output `x * alpha`, where the
    `W` and `psi` are 1x1 convolutions. The coefficient map uses a **sigmoid** (as in Oktay et al.
    and the AER-Net paper's Figure 5); the public AER-Net code applies a ReLU there, which lets the
    gate amplify features without bound and never fully close - a bug this layer does not copy.

    The gating signal `g` is the decoder's feature map already upsampled to the skip's resolution,
    so both inputs share height and width (the variant most Keras attention U-Nets use).

    Args:
        intermediate_channels: channels of the joint space `q`; e.g. half the skip's channels.
        **kwargs: standard `keras.layers.Layer` arguments (name, dtype, ...).

    Call args:
        inputs: list `[x, g]`: skip features (B, H, W, Cx) and gating signal (B, H, W, Cg).

    Returns:
        The gated skip features, shape of `x`.
    """

    def __init__(self, intermediate_channels: int, **kwargs):
        super().__init__(**kwargs)
        self.intermediate_channels = int(intermediate_channels)
        # No bias on theta_x: the bias of phi_g already covers the sum (as in Oktay et al.).
        self.theta_x = keras.layers.Conv2D(
            self.intermediate_channels, 1, use_bias=False, dtype=self.dtype_policy, name="theta_x"
        )
        self.phi_g = keras.layers.Conv2D(
            self.intermediate_channels, 1, dtype=self.dtype_policy, name="phi_g"
        )
        self.psi = keras.layers.Conv2D(1, 1, dtype=self.dtype_policy, name="psi")

    def build(self, input_shape):
        x_shape, g_shape = input_shape
        if x_shape[1:3] != g_shape[1:3] and None not in (*x_shape[1:3], *g_shape[1:3]):
            raise ValueError(
                f"AttentionGate {self.name!r}: skip {tuple(x_shape)} and gating signal "
                f"{tuple(g_shape)} must have the same height and width; upsample the gate first"
            )
        self.theta_x.build(x_shape)
        self.phi_g.build(g_shape)
        self.psi.build((*x_shape[:3], self.intermediate_channels))
        self.built = True

    def call(self, inputs):
        x, g = inputs
        q = keras.ops.relu(self.theta_x(x) + self.phi_g(g))
        alpha = keras.ops.sigmoid(self.psi(q))
        return x * alpha

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update({"intermediate_channels": self.intermediate_channels})
        return config
