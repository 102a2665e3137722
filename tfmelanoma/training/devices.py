"""Devices and data parallelism for every Keras backend, and the versions a run records.

`run.distribute=mirrored` means "all local devices, one model replica each, the global batch split
between them": `tf.distribute.MirroredStrategy` on TensorFlow, `keras.distribution.DataParallel`
on JAX. Both are the frameworks' own engines; nothing here splits batches or reduces gradients by
hand. On a machine without accelerators the replicas are the logical CPU devices (TensorFlow:
`tf.config.set_logical_device_configuration`; JAX: `XLA_FLAGS=--xla_force_host_platform_device_count=N`),
which is how the tests check the data-parallel path on CPU.

TensorFlow is imported only when the backend is TensorFlow, so a JAX run works where TensorFlow is
not installed.
"""

from __future__ import annotations

import contextlib
import platform
import sys
from dataclasses import dataclass

import keras
import numpy as np

from tfmelanoma import __version__
from tfmelanoma.config import Config


@dataclass
class Placement:
    """Where a run's model lives.

    Attributes:
        scope: context manager to build, compile, fit and load the model in.
        replicas: model replicas that each get `global batch / replicas` examples per step.
        engine: the framework object doing the work (for the record), e.g. "MirroredStrategy".
    """

    scope: contextlib.AbstractContextManager
    replicas: int
    engine: str


def placement(config: Config) -> Placement:
    """The distribution scope for `run.distribute` on the current Keras backend.

    Raises:
        ValueError: a distribution mode the backend does not offer, or a global batch that does
            not split evenly between the replicas.
    """
    backend = keras.backend.backend()
    mode = config.run.distribute
    if backend == "tensorflow":
        strategy = _tf_strategy(mode)
        replicas = strategy.num_replicas_in_sync
        engine = type(strategy).__name__
        scope = strategy.scope()
    elif mode == "none":
        return Placement(contextlib.nullcontext(), 1, "none")
    elif mode == "multiworker":
        raise ValueError(
            "run.distribute=multiworker needs the TensorFlow backend "
            f"(MultiWorkerMirroredStrategy); on {backend} use run.distribute=mirrored"
        )
    elif backend == "jax":
        devices = keras.distribution.list_devices()
        distribution = keras.distribution.DataParallel(devices=devices)
        replicas, engine, scope = (
            len(devices),
            "keras.distribution.DataParallel",
            distribution.scope(),
        )
    else:
        raise ValueError(
            f"run.distribute=mirrored is not available on the {backend} backend; use tensorflow "
            "or jax (or run.distribute=none)"
        )
    if config.run.batch_size % replicas:
        raise ValueError(
            f"run.batch_size={config.run.batch_size} does not split evenly between {replicas} "
            f"replicas; use a multiple of {replicas}"
        )
    return Placement(scope, replicas, engine)


def _tf_strategy(mode: str):
    import tensorflow as tf

    if mode == "mirrored":
        # All GPUs; on a machine without GPUs, every logical CPU device (a CPU-only check of the
        # data-parallel path, e.g. with two logical devices configured).
        devices = None
        if not tf.config.list_logical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if mode == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()  # the default, no-op strategy


def configure(config: Config) -> None:
    """Process-wide switches: op determinism (TensorFlow) and the mixed-precision policy."""
    if config.run.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if config.run.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")


def jit_compile(config: Config) -> bool:
    """`run.jit_compile` on TensorFlow; JAX always compiles its step, torch runs eagerly."""
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend == "torch":
        return False
    return config.run.jit_compile


def _devices() -> list[str]:
    if keras.backend.backend() == "torch":  # keras.distribution has no torch implementation
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    return keras.distribution.list_devices()


def versions() -> dict:
    """Library versions, platform and devices, for `versions.json`."""
    import sklearn
    import tensorflow_datasets as tfds

    out = {
        "tfmelanoma": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "tensorflow_datasets": tfds.__version__,
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "devices": _devices(),
    }
    for name in ("tensorflow", "jax", "torch"):
        module = sys.modules.get(name)  # only what this process loaded, never imported here
        if module is not None:
            out[name] = module.__version__
    return out
