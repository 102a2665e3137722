"""Linear probe: logistic regression on a pretrained backbone's frozen pooled features.

The baseline a fine-tuning recipe has to beat (issue #18). Same config, splits, image size and
decoding as `python -m tfmelanoma.train` (give it the same `--config` / `--set`): the registry
model is built with `model.weights`, its `head_pool` output (global average pooling of the last
feature map) is computed once per image of the training, validation and test splits (no
augmentation), standardised with training statistics, and scikit-learn's LogisticRegression is
fitted on training for each C of a grid; the C with the best validation AUC is kept, and its test
predictions go through the toolkit's evaluation (`evaluate_predictions`: bootstrap intervals,
calibration and thresholds fitted on validation), like a training run's.

Usage:
    python benchmarks/linear_probe.py --out runs/probe_isic2017 --config transfer \
        --set data.manual_dir=../shared/data --set data.train=isic2017 \
        --set data.test=isic2017:validation --set data.image_size=128

Writes `<out>/probe.json` (the C grid with validation AUCs, the chosen C, feature and fit times)
and `<out>/evaluation/` (the report, `metrics.json` with the AUC and its interval).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def fit_probe(train_x, train_y, val_x, val_y, grid=C_GRID, seed: int = 0):
    """Logistic regressions on standardised features, C chosen by validation AUC.

    Args:
        train_x, val_x: (N, D) features. train_y, val_y: (N,) binary labels (1 = melanoma).
        grid: inverse regularisation strengths to try.
        seed: the solver's random state.

    Returns:
        (predict, table): `predict(x)` gives (N, 2) probabilities of the chosen model;
        `table` lists {"C", "val_auc"} per grid value and, last, {"chosen_C": C}.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    tx, vx = scaler.transform(train_x), scaler.transform(val_x)
    best, table = None, []
    for c in grid:
        clf = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(tx, train_y)
        auc = float(roc_auc_score(val_y, clf.predict_proba(vx)[:, 1]))
        table.append({"C": c, "val_auc": auc})
        if best is None or auc > best[0]:
            best = (auc, c, clf)
    table.append({"chosen_C": best[1]})
    clf = best[2]
    return (lambda x: clf.predict_proba(scaler.transform(x))), table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--config", default="transfer", help="preset or YAML (as train)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    from tfmelanoma.config import load_config

    config = load_config(args.config, args.set)
    import keras

    from tfmelanoma.evaluation import evaluate_predictions
    from tfmelanoma.training import inputs, tasks
    from tfmelanoma.training.data import load_splits

    started = time.perf_counter()
    splits = load_splits(config)
    model = tasks.task_of(config).build_model(config)
    features = keras.Model(model.input, model.get_layer("head_pool").output)
    views = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    data = {k: inputs.predict_view(features, v, config, "tf") for k, v in views.items()}
    feature_seconds = time.perf_counter() - started
    label = {k: (y == 1).astype(int) for k, (y, _, _) in data.items()}  # binary: 1 = melanoma
    t0 = time.perf_counter()
    predict, table = fit_probe(
        data["train"][1], label["train"], data["validation"][1], label["validation"],
        seed=config.run.seed,
    )  # fmt: skip
    fit_seconds = time.perf_counter() - t0
    result = evaluate_predictions(
        data["test"][0],
        predict(data["test"][1]),
        data["test"][2],
        tasks.class_names(config),
        args.out / "evaluation",
        val_labels=data["validation"][0],
        val_probs=predict(data["validation"][1]),
        config={"bootstrap_seed": config.run.seed},
        target_sensitivity=config.eval.target_sensitivity,
    )
    summary = {
        "model": config.model.name,
        "weights": config.model.weights,
        "image_size": config.data.image_size,
        "sizes": {k: len(v[0]) for k, v in data.items()},
        "grid": table,
        "feature_seconds": round(feature_seconds, 1),
        "fit_seconds": round(fit_seconds, 1),
        "test_auc": result["summary"].get("auc_roc"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probe.json").write_text(json.dumps(summary, indent=2, default=float))
    print(json.dumps(summary, indent=2, default=float))


if __name__ == "__main__":
    main()
