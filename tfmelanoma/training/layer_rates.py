"""Discriminative, staged learning rates for fine-tuning a pretrained backbone, in the optimizer.

The transfer recipe (`docs/training.md`, "Fine-tuning a pretrained backbone") in one compiled
training step, without a second `fit` or a recompile:

- the new head trains alone for `head_warmup_epochs` (the backbone's learning rate is 0, and so
  is its decoupled weight decay: the backbone stays bit-identical);
- then the backbone trains at `backbone_lr_scale` x the head's learning rate, unfrozen in
  `unfreeze_stages` groups of layers, top group first, one more every `unfreeze_every` epochs;
  each group's rate ramps up linearly over `ramp_epochs` once it starts.

Every multiplier is a pure function of the optimizer's step counter (`iterations`), which the
checkpoints keep, so `--resume` continues exactly as an uninterrupted run would. Which variable
belongs to the head or to which backbone group is read from the variables' paths and order when
the optimizer is built, so a checkpoint loaded back rebuilds the same table.

Keras 3 applies every update through `update_step(gradient, variable, learning_rate)` on every
backend (base optimizer loop on JAX and torch, `distribution.extended.update` on TensorFlow), so
scaling the learning rate there reaches all of them. Weight decay, which Keras applies
separately with the global rate (`_apply_weight_decay`), is moved into `update_step` to use the
scaled rate.
"""

from __future__ import annotations

import re

import keras
from keras import ops

HEAD_PATTERN = r"(^|/)([^/]*(logits|head_[^/]*)|age_(hidden|unit))/[^/]+$"
"""Variable paths of the classification head (`models/heads.py`: `logits`, `head_*` layers) and
of the multi-task model's age head (`models/multitask.py`: `age_hidden`, `age_logits`,
`age_unit`); every other trainable variable belongs to the backbone."""


def backbone_stages(paths: list[str], stages: int, head_pattern: str = HEAD_PATTERN) -> list[int]:
    """Group of each variable: -1 for the head, else 0 (top of the backbone) .. stages - 1.

    The backbone's layers (variable path minus its last part), in the order their variables
    come (the model's topological order), are cut into `stages` runs of equal length; the last
    run is group 0, the one that unfreezes first.

    Args:
        paths: the trainable variables' paths, in the model's order.
        stages: number of backbone groups (>= 1).
        head_pattern: regular expression matching the head's variable paths.

    Returns:
        One group per path.
    """
    head = re.compile(head_pattern)
    layers: dict[str, int] = {}
    for path in paths:
        if not head.search(path):
            layers.setdefault(path.rpartition("/")[0], len(layers))
    n = max(1, len(layers))
    out = []
    for path in paths:
        if head.search(path):
            out.append(-1)
        else:
            position = layers[path.rpartition("/")[0]]
            out.append(stages - 1 - position * stages // n)
    return out


def multiplier(step, stage: int, *, steps_per_epoch: int, head_warmup_epochs: int,
               backbone_lr_scale: float, unfreeze_every: int, ramp_epochs: int):  # fmt: skip
    """Learning-rate multiplier of a variable of backbone group `stage` at optimizer step `step`.

    0 before the group's first epoch `head_warmup_epochs + stage * unfreeze_every`, then
    `backbone_lr_scale` x a linear ramp over `ramp_epochs` epochs (none for 0). Works on Python
    numbers and on tensors (`keras.ops`).
    """
    start = (head_warmup_epochs + stage * unfreeze_every) * steps_per_epoch
    ramp = max(1, ramp_epochs * steps_per_epoch)
    step = ops.cast(step, "float32")
    return backbone_lr_scale * ops.clip((step - start + 1.0) / ramp, 0.0, 1.0)


class LayerRates:
    """Mixin for a Keras 3 optimizer: per-variable learning-rate multipliers (module docstring).

    Args:
        steps_per_epoch: optimizer steps per epoch (the multipliers change at epoch bounds).
        head_warmup_epochs: epochs in which only the head trains.
        backbone_lr_scale: the backbone's learning rate as a fraction of the head's.
        unfreeze_stages: backbone groups unfrozen one after the other, top first.
        unfreeze_every: epochs between two groups' starts.
        ramp_epochs: linear ramp of a group's rate from 0 once it starts (0 = none).
        head_pattern: regular expression on variable paths that marks the head.
    """

    def __init__(
        self,
        *args,
        steps_per_epoch: int = 1,
        head_warmup_epochs: int = 0,
        backbone_lr_scale: float = 1.0,
        unfreeze_stages: int = 1,
        unfreeze_every: int = 1,
        ramp_epochs: int = 0,
        head_pattern: str = HEAD_PATTERN,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.head_warmup_epochs = int(head_warmup_epochs)
        self.backbone_lr_scale = float(backbone_lr_scale)
        self.unfreeze_stages = int(unfreeze_stages)
        self.unfreeze_every = int(unfreeze_every)
        self.ramp_epochs = int(ramp_epochs)
        self.head_pattern = head_pattern
        self._stages: tuple[int, ...] = ()

    def build(self, variables):
        super().build(variables)
        self._stages = tuple(
            backbone_stages([v.path for v in variables], self.unfreeze_stages, self.head_pattern)
        )

    def variable_multiplier(self, variable):
        """The current multiplier of a trainable variable (1.0 for the head)."""
        stage = self._stages[self._get_variable_index(variable)]
        if stage < 0:
            return 1.0
        return multiplier(
            self.iterations,
            stage,
            steps_per_epoch=self.steps_per_epoch,
            head_warmup_epochs=self.head_warmup_epochs,
            backbone_lr_scale=self.backbone_lr_scale,
            unfreeze_every=self.unfreeze_every,
            ramp_epochs=self.ramp_epochs,
        )

    def _apply_weight_decay(self, variables):
        """Decay is applied in `update_step`, with the variable's own learning rate."""

    def update_step(self, gradient, variable, learning_rate):
        scale = self.variable_multiplier(variable)
        learning_rate = ops.cast(learning_rate, variable.dtype)
        if not isinstance(scale, float):
            learning_rate = learning_rate * ops.cast(scale, variable.dtype)
        if self.weight_decay is not None and self._use_weight_decay(variable):
            # Keras's decoupled decay (`_apply_weight_decay`), before the update as there.
            wd = ops.cast(self.weight_decay, variable.dtype)
            self.assign_sub(variable, variable * wd * learning_rate)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(
            steps_per_epoch=self.steps_per_epoch,
            head_warmup_epochs=self.head_warmup_epochs,
            backbone_lr_scale=self.backbone_lr_scale,
            unfreeze_stages=self.unfreeze_stages,
            unfreeze_every=self.unfreeze_every,
            ramp_epochs=self.ramp_epochs,
            head_pattern=self.head_pattern,
        )
        return config


@keras.saving.register_keras_serializable(package="tfmelanoma")
class LayerRateAdam(LayerRates, keras.optimizers.Adam):
    """Adam with `LayerRates`."""


@keras.saving.register_keras_serializable(package="tfmelanoma")
class LayerRateAdamW(LayerRates, keras.optimizers.AdamW):
    """AdamW with `LayerRates` (decoupled decay at each variable's own rate)."""


@keras.saving.register_keras_serializable(package="tfmelanoma")
class LayerRateSGD(LayerRates, keras.optimizers.SGD):
    """SGD with momentum and `LayerRates`."""
