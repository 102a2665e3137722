"""Optimizers and learning-rate schedules of the papers, from `OptimizerConfig`."""

from __future__ import annotations

import keras

from tfmelanoma.config import OptimizerConfig


def make_schedule(cfg: OptimizerConfig, steps_per_epoch: int, epochs: int):
    """The learning rate as a float or a Keras schedule (indexed by optimizer step).

    - constant: `learning_rate` throughout.
    - step: × `step_factor` every `step_epochs` epochs (the uncertainty paper: ×0.1 every 7).
    - cosine: cosine decay to 0 over the run.
    - one_cycle: linear warm-up from lr/25 to lr over the first 30 % of steps, then cosine decay
      to 0 (the multi-class paper's one-cycle policy, as Keras's CosineDecay with warm-up).
    """
    lr = cfg.learning_rate
    total = max(1, steps_per_epoch * epochs)
    if cfg.schedule == "constant":
        return lr
    if cfg.schedule == "step":
        boundaries = [steps_per_epoch * e for e in range(cfg.step_epochs, epochs, cfg.step_epochs)]
        if not boundaries:
            return lr
        values = [lr * cfg.step_factor**i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if cfg.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total)
    if cfg.schedule == "one_cycle":
        warmup = max(1, int(0.3 * total))
        return keras.optimizers.schedules.CosineDecay(
            lr / 25, decay_steps=max(1, total - warmup), warmup_target=lr, warmup_steps=warmup
        )
    raise ValueError(f"optimizer.schedule: unknown schedule {cfg.schedule!r}")


def make_optimizer(
    cfg: OptimizerConfig, steps_per_epoch: int, epochs: int
) -> keras.optimizers.Optimizer:
    """Adam / AdamW / SGD with momentum, with the configured schedule."""
    lr = make_schedule(cfg, steps_per_epoch, epochs)
    if cfg.name == "adam":
        return keras.optimizers.Adam(lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
    if cfg.name == "adamw":
        return keras.optimizers.AdamW(
            lr, weight_decay=cfg.weight_decay, beta_1=cfg.beta_1, beta_2=cfg.beta_2
        )
    if cfg.name == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum)
    raise ValueError(f"optimizer.name: unknown optimizer {cfg.name!r}")
