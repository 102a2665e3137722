"""The segmentation task of the training engine: lesion masks from a builder or image + mask folders.

Config (see `tfmelanoma.config`): `data.train` one source (isic2016 | isic2017 | isic2018 | ph2,
NAME/CONFIG, or `folder` with `data.images_dir` / `data.masks_dir`), `data.val_split`,
`data.limit` / `data.val_limit`, `data.test` (the split evaluated at the end); `model.name` a
segmentation registry model with `model.options` (colour_space, encoder, base_filters, depth,
bn_momentum, decoder_filters) and `model.weights`; `model.loss` dice | dice_bce | bce; the best
epoch by `val_dice` (per-image Dice at 0.5). `augment.enabled` switches the joint flips, 90-degree
rotations and crops; the other `augment` keys are the classifier's colour and strength options.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras

from tfmelanoma.config import Config
from tfmelanoma.data import segmentation_sources as sources
from tfmelanoma.errors import ToolMissingError
from tfmelanoma.training import devices, inputs
from tfmelanoma.training.optim import make_optimizer
from tfmelanoma.training.tasks import _check_common

UNET_OPTIONS = {"colour_space", "base_filters", "depth", "bn_momentum"}
ENCODER_OPTIONS = {"colour_space", "encoder", "bn_momentum", "decoder_filters"}
OPTIONS = {
    "unet": UNET_OPTIONS,
    "attention_unet": UNET_OPTIONS,
    "attention_residual_unet": UNET_OPTIONS,
    "aernet": ENCODER_OPTIONS,
}
COLOUR_SPACES = ("rgb", "lab", "hsv")
LOSSES = ("dice", "dice_bce", "bce")
SPLITS = ("", "train", "validation", "test")


def check_backend(name: str, options: dict) -> None:
    """segmentation_models (sm_unet, sm_fpn, sm:<backbone>) is TensorFlow-only: refuse it early."""
    backend = keras.backend.backend()
    encoder = str(options.get("encoder", ""))
    if (name.startswith("sm_") or encoder.startswith("sm:")) and backend != "tensorflow":
        raise ValueError(
            f"{name}{' encoder ' + encoder if encoder else ''}: segmentation_models (sm_unet, "
            f"sm_fpn, sm:<backbone>) needs KERAS_BACKEND=tensorflow; the backend is {backend!r}"
        )


class SegmentationTask:
    """Images -> (H, W, 1) lesion probabilities; evaluation: per-image Jaccard / Dice report."""

    name = "segmentation"
    monitor = "val_dice"

    def check(self, config: Config) -> None:
        """Raises ValueError naming the key, before any data is read or model built."""
        _check_common(config, self.name)
        d, m = config.data, config.model
        if len(d.train) != 1:
            raise ValueError(f"data.train: segmentation trains on one source, got {list(d.train)}")
        source = d.train[0]
        if source == sources.FOLDER:
            if not (d.images_dir and d.masks_dir):
                raise ValueError("data.train=folder needs data.images_dir and data.masks_dir")
        elif source.removeprefix("tfds:").split("/")[0] not in sources.BUILDERS:
            raise ValueError(
                f"data.train: {source!r} has no lesion masks; segmentation sources: "
                f"{', '.join(sources.BUILDERS)} (or NAME/CONFIG), or folder"
            )
        if d.test not in SPLITS:
            raise ValueError(
                f"data.test={d.test!r}: for segmentation, the split of {source} to evaluate at "
                "the end: '' (its test split, else validation), train, validation or test"
            )
        if m.loss != "auto" and m.loss not in LOSSES:
            raise ValueError(f"model.loss={m.loss!r}: segmentation losses are {', '.join(LOSSES)}")
        allowed = OPTIONS.get(m.name)
        unknown = sorted(set(m.options) - allowed) if allowed is not None else []
        if unknown:
            raise ValueError(
                f"model.options: {unknown} are not options of {m.name!r} "
                f"(it takes {', '.join(sorted(allowed))})"
            )
        space = m.options.get("colour_space", "lab")
        if space not in COLOUR_SPACES:
            raise ValueError(f"model.options.colour_space={space!r}: one of {COLOUR_SPACES}")
        momentum = m.options.get("bn_momentum", 0.99)
        if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ValueError(f"model.options.bn_momentum={momentum!r}: a number in [0, 1)")
        stride = 2 ** m.options.get("depth", 4) if allowed is UNET_OPTIONS else 32
        if d.image_size % stride:
            raise ValueError(
                f"data.image_size={d.image_size} must be a multiple of {stride} for {m.name!r}"
            )
        if d.balance != "none" or config.run.distribute != "none" or m.teacher:
            raise ValueError(
                "data.balance, run.distribute and model.teacher are classification options "
                '(none, none, "")'
            )
        check_backend(m.name, m.options)

    def resolve_pipeline(self, config: Config) -> str:
        """tf.data on TensorFlow, unless the source is prepared as ArrayRecord (NumPy then)."""
        pipeline = inputs.resolve_pipeline(config)
        if pipeline == "tf" and importlib.util.find_spec("tensorflow") is None:
            raise ToolMissingError(
                "data.pipeline=tf: --pipeline tf.data needs TensorFlow, which is not installed "
                "here; use data.pipeline=numpy (--pipeline numpy; auto picks it)"
            )
        source = config.data.train[0]
        if config.data.pipeline != "auto" or pipeline not in ("tf", "tf_cached"):
            return pipeline
        if source == sources.FOLDER:
            return pipeline
        import tensorflow_datasets as tfds

        from tfmelanoma.datasets.access import is_array_record

        try:
            builder = tfds.builder(
                sources.builder_name(source), data_dir=config.data.data_dir or None
            )
        except Exception:  # not registered yet / unknown: `load_data` names the problem
            return pipeline
        if not builder.is_prepared():
            return pipeline
        if pipeline == "tf":  # ArrayRecord: the TF-free pipeline reads it as fast
            return "numpy" if is_array_record(builder) else pipeline
        # tf_cached reads ArrayRecord only: a source prepared as TFRecord keeps tf.data.
        return pipeline if is_array_record(builder) else "tf"

    def load_data(self, config: Config, pipeline: str) -> sources.SegmentationData:
        return sources.load_segmentation_data(config, file_format=inputs.file_format(pipeline))

    def _eval_batches(self, config: Config, pipeline: str, split):
        """(batches in the split's order, image ids or None when the batches serve their own)."""
        size, batch = config.data.image_size, config.run.batch_size
        if pipeline == "tf":
            from tfmelanoma.data import segmentation as tf_pipeline

            ds = tf_pipeline.eval_dataset(split, size, batch, cache=config.data.cache)
            return ds, tf_pipeline.image_ids(split)
        from tfmelanoma.data.segmentation_numpy import SegmentationBatches

        source = split.as_data_source()
        workers = inputs.workers(config)
        return SegmentationBatches(source, image_size=size, batch_size=batch, workers=workers), None

    def make_inputs(self, config, pipeline, data, start_epoch, replicas) -> inputs.Inputs:
        d, r = config.data, config.run
        if pipeline in inputs.CACHED:
            return _cached_inputs(config, pipeline, data, start_epoch)
        validation, _ = self._eval_batches(config, pipeline, data.validation)
        if pipeline == "tf":
            from tfmelanoma.data import segmentation as tf_pipeline

            train, steps = tf_pipeline.training_dataset(
                data.train, d.image_size, r.batch_size, augment=config.augment.enabled,
                seed=r.seed, start_epoch=start_epoch, steps_per_epoch=r.steps_per_epoch,
                cache=d.cache,
            )  # fmt: skip
            return inputs.Inputs(train, steps, validation)
        from tfmelanoma.data.segmentation_numpy import SegmentationBatches

        train = SegmentationBatches(
            data.train.as_data_source(), image_size=d.image_size, batch_size=r.batch_size,
            augment=config.augment.enabled, shuffle=True, seed=r.seed, start_epoch=start_epoch,
            steps_per_epoch=r.steps_per_epoch, workers=inputs.workers(config), cache=d.cache,
        )  # fmt: skip
        return inputs.Inputs(train, len(train), validation, callbacks=[train.epoch_callback()])

    def build_model(self, config: Config) -> keras.Model:
        """The registry model with `model.options` at `data.image_size`."""
        from tfmelanoma.models import create_model

        kwargs = dict(config.model.options)
        kwargs["input_shape"] = (config.data.image_size, config.data.image_size, 3)
        weights = config.model.weights
        if weights and weights.lower() != "none" and config.model.name not in UNET_OPTIONS_MODELS:
            kwargs["weights"] = weights
        return create_model(config.model.name, **kwargs)

    def compile_model(
        self, model: keras.Model, config: Config, steps_per_epoch: int, *, weighted: bool = False
    ) -> None:
        """The configured loss (Dice by default), optimizer and schedule; per-image Dice and
        Jaccard (`dice`, `jaccard`) and the dataset-level IoU as metrics."""
        from tfmelanoma.models.segmentation import losses

        model.compile(
            optimizer=make_optimizer(config.optimizer, steps_per_epoch, config.run.epochs),
            loss=losses.get_loss("dice" if config.model.loss == "auto" else config.model.loss),
            metrics=losses.keras_metrics(),
            jit_compile=devices.jit_compile(config),
        )

    def evaluate(self, config: Config, data, run_dir: Path, pipeline: str) -> dict:
        """The report of `best.keras` on `data.test` in `evaluation/`: per_image.csv,
        metrics.json, grid.png.

        Returns:
            {split name: summary (n_images, jaccard, dice, thresholded_jaccard, ...)}.
        """
        from tfmelanoma.evaluation import segmentation as report

        model = keras.models.load_model(run_dir / "best.keras")
        ds, ids = self._eval_batches(config, pipeline, data.test)
        summary = report.evaluate_model(model, ds, ids, run_dir / "evaluation")
        return {data.test.name: {"split": data.test.name, **summary}}


def _split_fingerprint(split) -> str:
    """Identifies a segmentation split's pixels: the builder, its version, split and rows, or
    the folder files with their sizes and modification times."""
    import hashlib
    import os

    digest = hashlib.sha256(repr((split.builder, split.split, split.rows)).encode())
    if split.pairs is not None:
        for path in (*split.pairs.image_paths, *split.pairs.mask_paths):
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    else:
        info = getattr(getattr(split.as_data_source(), "source", None), "dataset_info", None)
        digest.update(str(getattr(info, "version", "")).encode())
        digest.update(str(split.data_dir).encode())
    return digest.hexdigest()[:16]


def _decoded_pairs(split, config: Config):
    """The split's images (antialiased resize) and binary masks, decoded once at image_size."""
    from tfmelanoma.data import decoded_cache
    from tfmelanoma.data.image_ops import resize_antialiased_np, resize_mask_np
    from tfmelanoma.data.segmentation_numpy import binary_mask
    from tfmelanoma.data.segmentation_sources import MASK_KEY

    folder = config.data.cache_dir or decoded_cache.default_cache_dir(split.data_dir)
    return decoded_cache.open_or_build(
        split.as_data_source(),
        fingerprint=_split_fingerprint(split),
        size=config.data.image_size,
        cache_dir=decoded_cache.expand(folder),
        fields={
            "image": resize_antialiased_np,
            "mask": lambda m, size: resize_mask_np(binary_mask(m), size),
        },
        keys={"mask": MASK_KEY},
        workers=inputs.workers(config),
    )


def _cached_inputs(config: Config, pipeline: str, data, start_epoch: int) -> inputs.Inputs:
    """Image + mask pairs from decoded caches through grain or tf.data, warped alike in the
    step."""
    from tfmelanoma.data import device_augment
    from tfmelanoma.data.cached_batches import CachedPairs

    d, r = config.data, config.run
    common = dict(batch_size=r.batch_size, image_size=d.image_size, seed=r.seed)
    train = CachedPairs(
        _decoded_pairs(data.train, config), augment=config.augment.enabled, training=True,
        steps_per_epoch=r.steps_per_epoch, **common,
    )  # fmt: skip
    val = CachedPairs(
        _decoded_pairs(data.validation, config), augment=False, training=False, **common
    )
    return inputs.Inputs(
        inputs.serve(train, pipeline, config, start_epoch=start_epoch, training=True),
        train.steps,
        inputs.serve(val, pipeline, config, training=False),
        validation_steps=val.steps,
        wrap=lambda model: device_augment.AugmentedSegmenter(model, d.image_size),
    )


UNET_OPTIONS_MODELS = tuple(name for name, opts in OPTIONS.items() if opts is UNET_OPTIONS)
