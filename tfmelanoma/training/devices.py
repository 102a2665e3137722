"""Devices, data parallelism, multi-host set-up and the compilation cache, for every Keras backend.

`run.distribute` picks the framework's own engine; nothing here splits batches or reduces gradients
by hand:

- `mirrored`: all local devices, one model replica each, the global batch split between them:
  `tf.distribute.MirroredStrategy` on TensorFlow, `keras.distribution.DataParallel` on JAX.
- `multiworker`: several processes (hosts), each with its local devices: on JAX
  `jax.distributed.initialize`
  (coordinator, process count and id from `run.coordinator` / `run.num_processes` /
  `run.process_id`, else `KERAS_DISTRIBUTION_JOB_ADDRESSES` / `_NUM_PROCESSES` / `_PROCESS_ID`,
  else JAX's own `JAX_COORDINATOR_ADDRESS` and cluster detection: SLURM, Open MPI, ...) and then
  `DataParallel` over every device of every process. TensorFlow's `MultiWorkerMirroredStrategy`
  is refused: Keras 3's `fit` fails under it (keras-team/keras#20585, reproduced here).

On a machine without accelerators the replicas are logical CPU devices (TensorFlow:
`tf.config.set_logical_device_configuration`; JAX: `XLA_FLAGS=--xla_force_host_platform_device_count=N`;
several JAX processes on one machine talk through gloo), which is how the tests check these paths.

Multi-process data: Keras's JAX trainer turns each process's batch into one global array
(`jax.make_array_from_process_local_data`), so each process must feed its own rows of every global
batch: `process_count()` / `process_index()` say which (`local_rows`); `ProcessShard` cuts them
out of a `PyDataset` of global batches for inputs that do not shard themselves. tf.data inputs are
sharded by Keras (`DataParallel.distribute_dataset`) or tf.distribute. Only the chief
(`is_chief()`, process 0) writes the run folder.

`configure` must run before anything compiles or lists devices: it turns on JAX's persistent
compilation cache (`run.compile_cache`) and joins the processes of a multi-host run. TensorFlow is
imported only when the backend is TensorFlow, so a JAX run works where TensorFlow is not installed.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tfmelanoma import __version__
from tfmelanoma.config import Config
from tfmelanoma.fsio import expand
from tfmelanoma.logging_utils import get_logger

logger = get_logger(__name__)

SHUTDOWN_TIMEOUT_S = 3600


@dataclass
class Placement:
    """Where a run's model lives.

    Attributes:
        scope: context manager to build, compile, fit and load the model in.
        replicas: model replicas that each get `global batch / replicas` examples per step (all
            processes together).
        engine: the framework object doing the work (for the record), e.g. "MirroredStrategy".
        processes: processes (hosts) taking part; each feeds `batch_size / processes` examples.
    """

    scope: contextlib.AbstractContextManager
    replicas: int
    engine: str
    processes: int = 1


def placement(config: Config, shards_itself: bool = True) -> Placement:
    """The distribution scope for `run.distribute` on the current Keras backend.

    Call after `configure` (which joins the processes of a multi-host JAX run).

    Args:
        shards_itself: JAX, several processes: the input feeds each process's rows itself
            (`per_process`); False for tf.data, which Keras then shards between the processes.

    Raises:
        ValueError: a distribution mode the backend does not offer, or a global batch that does
            not split evenly between the replicas.
    """
    backend = keras.backend.backend()
    mode = config.run.distribute
    processes = 1
    if backend == "tensorflow" and mode == "multiworker":
        # Checked 2026-11-28 (Keras 3.15.1, TF, two local workers with TF_CONFIG): `fit` fails
        # with "Attempt to convert a value (PerReplica...) to a Tensor", keras-team/keras#20585.
        raise ValueError(
            "run.distribute=multiworker: Keras 3's fit does not run under TensorFlow's "
            "MultiWorkerMirroredStrategy (keras-team/keras#20585); train on several hosts with "
            "KERAS_BACKEND=jax (jax.distributed), or on one host with run.distribute=mirrored"
        )
    if backend == "tensorflow":
        strategy = _tf_strategy(mode)
        replicas = strategy.num_replicas_in_sync
        engine = type(strategy).__name__
        scope = strategy.scope()
    elif mode == "none":
        return Placement(contextlib.nullcontext(), 1, "none")
    elif backend == "jax":
        devices = keras.distribution.list_devices()  # every process's devices
        distribution = keras.distribution.DataParallel(
            devices=devices, auto_shard_dataset=not shards_itself
        )
        replicas, engine, scope = (
            len(devices),
            "keras.distribution.DataParallel",
            distribution.scope(),
        )
        processes = process_count()
        if mode == "multiworker" and processes == 1:
            logger.warning("run.distribute=multiworker with one process: only local devices")
    else:
        raise ValueError(
            f"run.distribute={mode} is not available on the {backend} backend; use tensorflow "
            "or jax (or run.distribute=none)"
        )
    if config.run.batch_size % replicas:
        raise ValueError(
            f"run.batch_size={config.run.batch_size} does not split evenly between {replicas} "
            f"replicas; use a multiple of {replicas}"
        )
    return Placement(scope, replicas, engine, processes)


def _tf_strategy(mode: str):
    import tensorflow as tf

    if mode == "mirrored":
        # All GPUs; on a machine without GPUs, every logical CPU device (a CPU-only check of the
        # data-parallel path, e.g. with two logical devices configured).
        devices = None
        if not tf.config.list_logical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()  # the default, no-op strategy


def configure(config: Config) -> None:
    """Process-wide switches, before anything compiles or lists devices.

    JAX: the persistent compilation cache (`run.compile_cache`) and, with
    `run.distribute=multiworker`, `jax.distributed.initialize`. TensorFlow: op determinism.
    Every backend: the mixed-precision policy.

    Raises:
        ValueError: a multi-host run whose coordinator, process count or id cannot be found.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        enable_compile_cache(compile_cache_dir(config))
        if config.run.distribute == "multiworker":
            _join_processes(config)
    if config.run.deterministic and backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if config.run.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")


def compile_cache_dir(config: Config) -> Path | None:
    """The persistent compilation cache folder of `run.compile_cache` ("" = none)."""
    value = config.run.compile_cache.strip()
    if value == "auto":
        root = os.environ.get("TFMELANOMA_CACHE_DIR") or (
            Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "tfmelanoma"
        )
        return expand(str(root)) / "jax"
    return expand(value) if value else None


def enable_compile_cache(folder: Path | None) -> None:
    """Points JAX's persistent compilation cache at `folder` (None: leaves JAX's setting).

    Every compiled program is written there, whatever its compile time or size
    (`jax_persistent_cache_min_compile_time_secs=0`, `..._min_entry_size_bytes=-1`: the train
    step is what matters, and small eval steps cost little room). A later process with the same
    program, JAX version and devices reads the executable instead of compiling it (on GPU, JAX
    also keeps XLA's autotuning results there). Entries are keyed by their content, so several
    runs, models and processes share one folder.
    """
    if folder is None or keras.backend.backend() != "jax":
        return
    import jax

    folder.mkdir(parents=True, exist_ok=True)
    if jax.config.jax_compilation_cache_dir == str(folder):
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()  # a cache opened earlier in this process used another folder
    logger.info("JAX compilation cache: %s", folder)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def _join_processes(config: Config) -> None:
    """`jax.distributed.initialize` with the config's (else the environment's) cluster."""
    import jax

    if jax.distributed.is_initialized():
        return
    r = config.run
    address = r.coordinator or os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES", "")
    address = address.split(",")[0].strip() or None  # Keras's form lists every job, first leads
    count = r.num_processes or _env_int("KERAS_DISTRIBUTION_NUM_PROCESSES")
    index = r.process_id if r.process_id >= 0 else _env_int("KERAS_DISTRIBUTION_PROCESS_ID")
    try:
        jax.distributed.initialize(
            coordinator_address=address,
            num_processes=count,
            process_id=index,
            # At exit every process waits for the others; process 0 evaluates after training
            # while the rest are done, so they wait longer than JAX's default 5 minutes.
            shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S,
        )
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"run.distribute=multiworker: cannot join the processes ({e}); set run.coordinator "
            "(host:port of process 0), run.num_processes and run.process_id, or "
            "KERAS_DISTRIBUTION_JOB_ADDRESSES / _NUM_PROCESSES / _PROCESS_ID"
        ) from None
    logger.info(
        "process %d of %d (coordinator %s), %d local device(s)",
        jax.process_index(),
        jax.process_count(),
        address or "from the cluster",
        jax.local_device_count(),
    )


def process_count() -> int:
    """Processes (hosts) of this run; 1 unless a multi-host run was joined (`configure`)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.process_count()
    return 1


def process_index() -> int:
    """This process's number in [0, process_count()); 0 is the chief, which writes the run."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.process_index()
    return 0


def is_chief() -> bool:
    """Whether this process writes the run folder (process 0; always so in one process)."""
    return process_index() == 0


def local_rows(global_batch: int) -> slice:
    """This process's rows of a global batch of `global_batch` examples.

    Process p of n feeds rows [p * b / n, (p + 1) * b / n): the processes together see exactly
    the single-process run's batches, in the same order (so seeds, resume and results carry
    over). An input that builds only its own rows needs `global_batch / n` examples a step.

    Raises:
        ValueError: a batch that does not split evenly between the processes.
    """
    count, index = process_count(), process_index()
    if global_batch % count:
        raise ValueError(
            f"a batch of {global_batch} does not split evenly between {count} processes"
        )
    size = global_batch // count
    return slice(index * size, (index + 1) * size)


class ProcessShard(keras.utils.PyDataset):
    """This process's rows of every batch of a `PyDataset` of global batches (multi-host JAX).

    Every process prepares the whole global batch and keeps its rows (`local_rows`): correct
    with any input, but each host does the whole batch's loading work. Inputs that build only
    their own rows (cheaper) set `per_process = True` on themselves and are not wrapped.
    """

    def __init__(self, batches: keras.utils.PyDataset):
        super().__init__()
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def num_batches(self):
        return self.batches.num_batches

    def __getitem__(self, index: int):
        batch = self.batches[index]
        first = keras.tree.flatten(batch)[0]
        rows = local_rows(len(first))
        return keras.tree.map_structure(lambda a: a[rows], batch)

    def on_epoch_begin(self):
        self.batches.on_epoch_begin()

    def on_epoch_end(self):
        self.batches.on_epoch_end()


def per_process(batches):
    """`batches` as this process should feed them to `fit` (see `ProcessShard`).

    Raises:
        ValueError: several processes and an input that is neither a `PyDataset` nor tf.data
            and does not say it feeds only this process's rows (`per_process = True`).
    """
    if batches is None or process_count() == 1 or keras.backend.backend() != "jax":
        return batches
    if getattr(batches, "per_process", False):
        return batches
    if isinstance(batches, keras.utils.PyDataset):
        return ProcessShard(batches)
    if type(batches).__module__.startswith("tensorflow"):
        return batches  # tf.data: Keras shards it (DataParallel.distribute_dataset)
    raise ValueError(
        f"{process_count()} processes: a {type(batches).__name__} input must feed only this "
        "process's rows of every global batch (devices.local_rows) and set per_process = True"
    )


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
        "processes": process_count(),
    }
    for name in ("tensorflow", "jax", "torch"):
        module = sys.modules.get(name)  # only what this process loaded, never imported here
        if module is not None:
            out[name] = module.__version__
    return out
