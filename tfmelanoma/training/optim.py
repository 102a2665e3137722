"""Optimizers and learning-rate schedules of the papers, from `OptimizerConfig`."""

from __future__ import annotations

import keras

from tfmelanoma.config import ConfigError, OptimizerConfig
from tfmelanoma.models.registry import walk_layers
from tfmelanoma.training.layer_rates import LayerRateAdam, LayerRateAdamW, LayerRateSGD


def make_schedule(cfg: OptimizerConfig, steps_per_epoch: int, epochs: int):
    """The learning rate as a float or a Keras schedule (indexed by optimizer step).

    - constant: `learning_rate` throughout.
    - step: × `step_factor` every `step_epochs` epochs (the uncertainty paper: ×0.1 every 7).
    - cosine: cosine decay to 0 over the run.
    - one_cycle: linear warm-up from lr/25 to lr over the first 30 % of steps, then cosine decay
      to 0 (the multi-class paper's one-cycle policy, as Keras's CosineDecay with warm-up).
    - warmup_cosine: linear warm-up over `warmup_epochs` epochs (from lr / warm-up steps, so
      the first step is not wasted), then cosine decay to 0 (the fine-tuning recipe).
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
    if cfg.schedule == "warmup_cosine":
        warmup = min(total - 1, cfg.warmup_epochs * steps_per_epoch)
        if warmup < 1:
            return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total)
        return keras.optimizers.schedules.CosineDecay(
            lr / warmup, decay_steps=total - warmup, warmup_target=lr, warmup_steps=warmup
        )
    raise ValueError(f"optimizer.schedule: unknown schedule {cfg.schedule!r}")


def make_optimizer(
    cfg: OptimizerConfig, steps_per_epoch: int, epochs: int, *, layer_rates: bool = False
) -> keras.optimizers.Optimizer:
    """Adam / AdamW / SGD with momentum, with the configured schedule.

    Args:
        layer_rates: fine-tuning a pretrained backbone: the optimizer also applies the head
            warm-up, the backbone's lower rate and its staged unfreezing (`layer_rates.py`;
            `head_warmup_epochs`, `backbone_lr_scale`, `unfreeze_stages`, `unfreeze_every`,
            `warmup_epochs`). A plain Keras optimizer where they would change nothing.

    `ema_momentum` > 0 turns on Keras's weight averaging (`use_ema`); `fit` then needs
    `keras.callbacks.SwapEMAWeights` for validation on the average, and best checkpoints are
    written with it (`checkpoints.averaged_weights`).
    """
    lr = make_schedule(cfg, steps_per_epoch, epochs)
    ema = dict(use_ema=True, ema_momentum=cfg.ema_momentum) if cfg.ema_momentum else {}
    kwargs = {}
    if layer_rates and (
        cfg.head_warmup_epochs or cfg.backbone_lr_scale != 1.0 or cfg.unfreeze_stages > 1
    ):
        kwargs = dict(
            steps_per_epoch=steps_per_epoch,
            head_warmup_epochs=cfg.head_warmup_epochs,
            backbone_lr_scale=cfg.backbone_lr_scale,
            unfreeze_stages=cfg.unfreeze_stages,
            unfreeze_every=cfg.unfreeze_every,
            ramp_epochs=cfg.warmup_epochs,
        )
    if cfg.name == "adam":
        cls = LayerRateAdam if kwargs else keras.optimizers.Adam
        return cls(lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2, **ema, **kwargs)
    if cfg.name == "adamw":
        cls = LayerRateAdamW if kwargs else keras.optimizers.AdamW
        return cls(
            lr,
            weight_decay=cfg.weight_decay,
            beta_1=cfg.beta_1,
            beta_2=cfg.beta_2,
            **ema,
            **kwargs,
        )
    if cfg.name == "sgd":
        cls = LayerRateSGD if kwargs else keras.optimizers.SGD
        return cls(lr, momentum=cfg.momentum, **ema, **kwargs)
    raise ValueError(f"optimizer.name: unknown optimizer {cfg.name!r}")


def check_ema(cfg: OptimizerConfig, model: keras.Model) -> None:
    """Refuses weight averaging for a model whose BatchNorm layers train.

    Keras averages the trainable weights only; BatchNorm's moving statistics keep following the
    raw weights, so the averaged model is normalised with another network's statistics. Measured
    on the web MeshNet (docs/training.md, "Weight averaging"): at 0.998 its validation accuracy
    stayed at the always-melanoma 0.32 for three epochs and its AUC trailed the raw weights'
    by 0.05 after ten. With frozen BatchNorm (a pretrained backbone's, the `transfer` recipe) or
    none, the average is consistent.

    Raises:
        ConfigError: `ema_momentum` is set and a BatchNormalization layer is trainable.
    """
    if not cfg.ema_momentum:
        return
    training = [
        layer.name
        for layer in walk_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]
    if training:
        raise ConfigError(
            f"optimizer.ema_momentum={cfg.ema_momentum}: {model.name} has {len(training)} "
            f"BatchNormalization layer(s) that train (e.g. {training[0]}), whose moving "
            "statistics Keras does not average: the averaged weights would be scored with "
            "statistics of the raw ones. Use it with frozen BatchNorm (a pretrained backbone, "
            "model.options.train_batchnorm: false) or a model without BatchNorm, or set "
            "optimizer.ema_momentum=0"
        )
