"""Which rows make batch `index` of epoch `epoch`: the one plan every seeded pipeline follows.

The NumPy pipeline (`numpy_pipeline.SeededBatches`) and the decoded-cache batches that grain and
tf.data serve (`cached_batches.CachedBatches`) both draw an epoch's order and cut its batches
here, so the same seed gives the same rows in every pipeline, and a resumed run the rows of an
uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchPlan:
    """Epoch orders and batch positions over `n` examples.

    Attributes:
        n: examples (stream positions; oversampling repeats rows before they get here).
        batch_size: examples per batch.
        training: a seeded permutation per epoch and full batches only; else the stream order
            with the last partial batch kept.
        seed: run seed.
        steps_per_epoch: training batches per epoch; 0 = one pass (partial batch dropped).
            More batches than one pass wrap around the epoch's order.

    Raises:
        ValueError: an empty split, or a training batch larger than the split.
    """

    n: int
    batch_size: int
    training: bool
    seed: int = 0
    steps_per_epoch: int = 0

    def __post_init__(self):
        if self.n == 0:
            raise ValueError("the split is empty")
        if self.training and self.batch_size > self.n:
            raise ValueError(
                f"batch size {self.batch_size} is larger than the training split "
                f"({self.n} examples)"
            )

    @property
    def full_batches(self) -> int:
        return self.n // self.batch_size

    @property
    def steps(self) -> int:
        """Batches per epoch."""
        if not self.training:
            return -(-self.n // self.batch_size)
        return self.steps_per_epoch or self.full_batches

    def order(self, epoch: int) -> np.ndarray:
        """Stream positions in epoch `epoch`'s order."""
        if not self.training:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def window(self, index: int) -> slice:
        """The positions in the epoch's order that batch `index` takes."""
        if self.training:
            index %= self.full_batches  # wrap when steps_per_epoch asks for more
        return slice(index * self.batch_size, (index + 1) * self.batch_size)
