"""The `grain` input pipeline: decoded-cache batches (`cached_batches`) served by grain.

    grain.MapDataset.range(first batch, last batch).map(CachedBatches)
        ──> IterDataset (threads; worker processes with data.grain_workers > 0) ──> model.fit

The training dataset covers the whole run from `start_epoch` on, and `fit` with
`steps_per_epoch` reads it with one iterator, so a resumed run reads exactly the batches of an
uninterrupted one (no epoch callback, no random-generator state). tf.data serves the same
batches on the TensorFlow backend (`pipeline.cached_dataset`). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import grain

from tfmelanoma.data.cached_batches import CachedBatches, run_range


def dataset(
    maker: CachedBatches,
    *,
    start_epoch: int = 0,
    epochs: int = 1,
    threads: int = 1,
    workers: int = 0,
    prefetch: int = 8,
) -> grain.IterDataset:
    """The grain dataset of `maker`'s batches: training from `start_epoch` to `epochs`, or one
    pass (evaluation).

    Args:
        threads: grain read threads. Gathers are memory copies: one thread, reading ahead,
            serves ~25,000 images/s at 224 px on this 2-core machine (2 threads: ~13,000,
            contending for the cores with the step); more help only on many idle cores.
        workers: grain worker processes (0 = none, in-process).
        prefetch: batches read ahead.
    """
    first, last = run_range(maker, start_epoch=start_epoch, epochs=epochs)
    ds = grain.MapDataset.range(first, last).map(maker)
    ds = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=max(threads, 1), prefetch_buffer_size=prefetch)
    )
    if workers > 0:
        from absl import flags

        # grain 0.2.x reads an absl flag in mp_prefetch and fails unless flags were parsed
        # (google/grain#1355; fixed after 0.2.18): scripts not run by absl.app parse none.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return ds
