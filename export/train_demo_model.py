"""Trains the MeshNet that ships with the web demo (a stop-gap until `tfmelanoma.train` covers it).

Data: the Kaggle "Skin Cancer: Malignant vs. Benign" set (ISIC-derived, 224 px). Its official
`train/` folder is split 85/15 (stratified, seeded) into training and validation; its official
`test/` folder is held out and only used for the reported metrics. Validation picks the
best epoch, the temperature and the entropy threshold (`tfmelanoma.evaluation`'s rule), so the
test numbers in `metrics.json` are honest. Kaggle images are not shipped, only the weights.

    python -m export.train_demo_model --data ../shared/data/kaggle_fanconic --out runs/webdemo_meshnet

Writes `model.keras` (BatchNorm folded), `metrics.json` and `history.json` into `--out`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfmelanoma.logging_utils import get_logger

log = get_logger(__name__)
CLASS_NAMES = ("non_melanoma", "melanoma")
# Kaggle folder name -> binary label; every "malignant" image in this set is a melanoma.
FOLDERS = {"benign": 0, "malignant": 1}


def list_split(root: Path, split: str) -> tuple[list[str], np.ndarray]:
    """Image paths and labels of `root/split/{benign,malignant}/*.jpg`, sorted."""
    paths, labels = [], []
    for folder, label in FOLDERS.items():
        files = sorted((root / split / folder).glob("*.jpg"))
        if not files:
            raise FileNotFoundError(f"no .jpg images in {root / split / folder}")
        paths += [str(f) for f in files]
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def load_images(paths: list[str], size: int) -> np.ndarray:
    """Decodes (browser-exact JPEG IDCT) and resizes as the web demo does: bilinear, no crop."""

    from tfmelanoma.data.image_ops import decode_tf as decode

    def one(p):
        img = decode(tf.io.read_file(p))
        return tf.image.resize(tf.cast(img, tf.float32), (size, size), method="bilinear")

    ds = tf.data.Dataset.from_tensor_slices(paths).map(one, num_parallel_calls=2).batch(256)
    return np.concatenate([b.numpy() for b in ds]).astype(np.float32)


def near_duplicates(train_paths: list[str], test_paths: list[str]) -> np.ndarray:
    """True for each test image whose pHash is within the project's duplicate threshold of a
    training/validation image (`tfmelanoma.datasets` rule): the Kaggle split removed byte copies
    only, and 30 of its 660 test images have such a near-twin in train/ (measured)."""
    import imagehash
    from PIL import Image

    from tfmelanoma.datasets import DEFAULT_MAX_DISTANCE

    def hashes(paths):
        out = []
        for p in paths:
            with Image.open(p) as im:
                out.append(int(str(imagehash.phash(im.convert("RGB"))), 16))
        return np.array(out, dtype=np.uint64)

    tr, te = hashes(train_paths), hashes(test_paths)
    xor = te[:, None] ^ tr[None, :]
    dist = np.unpackbits(xor.view(np.uint8).reshape(*xor.shape, 8), axis=-1).sum(-1)
    return dist.min(axis=1) <= DEFAULT_MAX_DISTANCE


def augment(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Flips, 90-degree turns and mild colour jitter (lesions have no canonical orientation)."""
    images = tf.image.random_flip_left_right(images)
    images = tf.image.random_flip_up_down(images)
    images = tf.image.rot90(images, k=tf.random.uniform([], 0, 4, dtype=tf.int32))
    images = tf.image.random_brightness(images, 20.0)
    images = tf.image.random_contrast(images, 0.85, 1.15)
    return tf.clip_by_value(images, 0.0, 255.0), labels


def evaluate(model: keras.Model, x_val, y_val, x_test, y_test, leaked=None) -> dict:
    """Test metrics with the temperature and entropy threshold chosen on validation.

    `leaked` marks test images with a near-duplicate in training; they are left out of the
    headline metrics (the full-split accuracy and AUC are reported beside them).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score

    from tfmelanoma.evaluation import calibration, uncertainty
    from tfmelanoma.evaluation.config import EvalConfig

    p_val = model.predict(x_val, batch_size=64, verbose=0)
    p_all = model.predict(x_test, batch_size=64, verbose=0)
    leaked = np.zeros(len(y_test), bool) if leaked is None else np.asarray(leaked)
    full = {
        "n": int(y_test.size),
        "accuracy": float(accuracy_score(y_test, p_all.argmax(1))),
        "auc_roc": float(roc_auc_score(y_test, p_all[:, 1])),
    }
    p_test, y_test = p_all[~leaked], y_test[~leaked]
    cfg = EvalConfig()
    temperature = calibration.fit_temperature(y_val, p_val)
    threshold, _ = uncertainty.select_threshold(
        y_val, p_val, cfg.threshold_grid, min_coverage=cfg.min_coverage
    )
    pred = p_test.argmax(1)
    tn, fp, fn, tp = confusion_matrix(y_test, pred, labels=[0, 1]).ravel()
    keep = uncertainty.retained_mask(uncertainty.normalized_entropy(p_test), threshold)
    return {
        "split": "kaggle_fanconic official test (held out; never used for training or selection) "
        "without the test images that have a pHash near-duplicate in train/",
        "n_test": int(y_test.size),
        "n_test_near_duplicates_removed": int(leaked.sum()),
        "full_test_split": full,
        "accuracy": float(accuracy_score(y_test, pred)),
        "auc_roc": float(roc_auc_score(y_test, p_test[:, 1])),
        "sensitivity": float(tp / (tp + fn)),
        "specificity": float(tn / (tn + fp)),
        "ece": float(calibration.ece_top_label(y_test, p_test, cfg.ece_bins)),
        "ece_after_temperature": float(
            calibration.ece_top_label(
                y_test, calibration.apply_temperature(p_test, temperature), cfg.ece_bins
            )
        ),
        "temperature": float(temperature),
        "entropy_threshold": float(threshold),
        "threshold_rule": "tfmelanoma.evaluation.uncertainty.select_threshold on validation "
        f"(min coverage {cfg.min_coverage})",
        "coverage_after_rejection": float(keep.mean()),
        "accuracy_after_rejection": float(accuracy_score(y_test[keep], pred[keep])),
        "n_validation": int(y_val.size),
    }


def strip_optimizer(model: keras.Model) -> keras.Model:
    """A copy without optimizer state (the saved file is then weights + config only)."""
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    return clean


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="kaggle_fanconic folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--evaluate-only",
        action="store_true",
        help="recompute metrics.json for the existing --out/model.keras (same splits)",
    )
    args = ap.parse_args(argv)
    from sklearn.model_selection import train_test_split

    from tfmelanoma.models import create_model
    from tfmelanoma.models.bn_folding import fold_batchnorm

    keras.utils.set_random_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    paths, labels = list_split(args.data, "train")
    tr_p, va_p, y_tr, y_val = train_test_split(
        paths, labels, test_size=0.15, stratify=labels, random_state=args.seed
    )
    te_p, y_test = list_split(args.data, "test")
    t0 = time.time()
    x_tr, x_val, x_test = (load_images(p, args.image_size) for p in (tr_p, va_p, te_p))
    log.info(
        "decoded %d/%d/%d images in %.0f s", len(x_tr), len(x_val), len(x_test), time.time() - t0
    )

    if args.evaluate_only:
        model = keras.saving.load_model(args.out / "model.keras", safe_mode=True, compile=False)
        metrics_path = args.out / "metrics.json"
        old = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        metrics = evaluate(model, x_val, y_val, x_test, y_test, near_duplicates(paths, te_p))
        metrics["training"] = old.get("training", {})
        metrics["evaluation_command"] = (
            "python -m export.train_demo_model --data ../shared/data/kaggle_fanconic "
            f"--out {args.out} --image-size {args.image_size} --evaluate-only"
        )
        metrics_path.write_text(json.dumps(metrics, indent=2))
        log.info("test metrics: %s", json.dumps(metrics, indent=1))
        return 0
    model = create_model("meshnet", input_shape=(args.image_size, args.image_size, 3))
    steps = int(np.ceil(len(x_tr) / args.batch_size)) * args.epochs
    model.compile(
        optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(args.lr, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )
    train = (
        tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
        .shuffle(len(x_tr), seed=args.seed)
        .batch(args.batch_size)
        .map(augment, num_parallel_calls=2)
        .prefetch(2)
    )
    best = args.out / "best.weights.h5"
    hist = model.fit(
        train,
        validation_data=(x_val, y_val),
        epochs=args.epochs,
        verbose=2,
        callbacks=[
            keras.callbacks.ModelCheckpoint(
                best, monitor="val_loss", save_best_only=True, save_weights_only=True
            )
        ],
    )
    model.load_weights(best)
    folded = strip_optimizer(fold_batchnorm(model))
    folded.save(args.out / "model.keras")
    metrics = evaluate(folded, x_val, y_val, x_test, y_test, near_duplicates(paths, te_p))
    metrics["training"] = {
        "data": "kaggle_fanconic train/ (85 % train, 15 % validation, stratified, seed "
        f"{args.seed})",
        "image_size": args.image_size,
        "epochs": args.epochs,
        "best_epoch": int(np.argmin(hist.history["val_loss"])) + 1,
        "command": "python -m export.train_demo_model --data ../shared/data/kaggle_fanconic "
        f"--out {args.out} --image-size {args.image_size} --epochs {args.epochs}",
        "seconds": round(time.time() - t0),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (args.out / "history.json").write_text(json.dumps(hist.history, indent=1))
    log.info("test metrics: %s", json.dumps(metrics, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
