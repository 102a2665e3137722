"""`python crash_train.py MODE <train args>`: the training CLI with one fault injected.

Modes:
    kill-before-commit-N     the process dies (os._exit(9), as a kill -9 would) after epoch N's
                             model file is written and before its state.json commit.
    nan-weights-in-epoch-N   one weight becomes NaN at the end of epoch N, before the checkpoint
                             callback looks at it (a divergence after good epochs).

Kept out of the library on purpose: the toolkit has no fault hooks; the fault is patched in here.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    mode, argv = sys.argv[1], sys.argv[2:]
    from tfmelanoma.train import main as train_main
    from tfmelanoma.training import checkpoints

    epoch = int(mode.rsplit("-", 1)[1])
    if mode.startswith("kill-before-commit-"):
        original = checkpoints.atomic_write_text

        def write(path, text):
            if path.name == "state.json" and f'"epochs_done": {epoch},' in text:
                os._exit(9)
            original(path, text)

        checkpoints.atomic_write_text = write
    elif mode.startswith("nan-weights-in-epoch-"):
        import keras
        import numpy as np

        original_end = checkpoints.ResumableCheckpoint.on_epoch_end

        def on_epoch_end(self, e, logs=None):
            if e + 1 == epoch:
                w = self.model.trainable_weights[0]
                value = keras.ops.convert_to_numpy(w.value).copy()
                value.flat[0] = np.nan
                w.assign(value)
            original_end(self, e, logs)

        checkpoints.ResumableCheckpoint.on_epoch_end = on_epoch_end
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return train_main(argv)


if __name__ == "__main__":
    sys.exit(main())
