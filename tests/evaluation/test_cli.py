"""`python -m tfmelanoma.evaluate` end to end on a small saved model and folders of images."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest
from PIL import Image

from tfmelanoma.evaluate import build_parser, main


def _save_model(path, k: int = 2, dropout: float = 0.0, size: int = 16, seed: int = 0) -> None:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    out = keras.layers.Dense(k, activation="softmax" if k > 1 else "sigmoid")(x)
    keras.Model(inp, out).save(path)


def _image_folders(root, counts: dict[str, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    for folder, n in counts.items():
        (root / folder).mkdir(parents=True)
        for i in range(n):
            # Different sizes on purpose: the CLI must resize to the model input.
            arr = rng.integers(0, 256, (20 + i % 3, 24, 3), dtype=np.uint8)
            arr[..., 0] = 220 if folder in ("malignant", "melanoma") else 40  # learnable signal
            Image.fromarray(arr).save(root / folder / f"{folder}_{i:03d}.png")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    _save_model(root / "m.keras")
    _save_model(root / "sig.keras", k=1)
    _save_model(root / "drop.keras", dropout=0.5)
    _save_model(root / "m24.keras", size=24, seed=1)
    _image_folders(root / "test", {"benign": 12, "malignant": 10}, 0)
    _image_folders(root / "val", {"benign": 10, "malignant": 10}, 1)
    return root


def test_cli_writes_report_with_tta_ensemble_and_gradcam(setup, tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(
        [
            "--model",
            str(setup / "m.keras"),
            "--model",
            str(setup / "sig.keras"),
            "--ensemble",
            "mean",
            "--images-dir",
            str(setup / "test"),
            "--val-images-dir",
            str(setup / "val"),
            "--class-map",
            "benign=non_melanoma,malignant=melanoma",
            "--out",
            str(out),
            "--tta",
            "--bootstrap",
            "20",
            "--gradcam",
            "2",
            "--gradcam-layer",
            "last_conv",
            "--gradcam-ids",
            "malignant/malignant_003",
            "--target-sensitivity",
            "0.8",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test"] == 22 and metrics["n_validation"] == 20
    assert metrics["rejection"]["threshold"] is not None
    op = metrics["operating_point"]
    assert op["target_sensitivity"] == 0.8 and op["validation"]["sensitivity"] >= 0.8
    with (out / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["label"] for r in rows} == {"non_melanoma", "melanoma"}
    assert rows[0]["image_id"] == "benign/benign_000"
    pngs = {p.name for p in (out / "gradcam").glob("gradcam_*.png")}
    assert "gradcam_malignant_malignant_003.png" in pngs and len(pngs) in (2, 3)
    assert "report:" in capsys.readouterr().out


def _melanoma_probs(out) -> dict[str, float]:
    with (out / "predictions.csv").open() as fh:
        return {r["image_id"]: float(r["prob_melanoma"]) for r in csv.DictReader(fh)}


def test_ensemble_members_are_fed_at_their_own_input_sizes(setup, tmp_path, capsys):
    """A 16 px and a 24 px model: the ensemble's probabilities are the mean of each model's own
    evaluation (each at its input size), not of both fed one size."""
    common = ["--images-dir", str(setup / "test"), "--no-val", "--bootstrap", "0"]
    common += ["--class-map", "benign=non_melanoma,malignant=melanoma"]
    reports = {}
    for name, models in (
        ("a", ["m.keras"]),
        ("b", ["m24.keras"]),
        ("ab", ["m.keras", "m24.keras"]),
    ):
        argv = [a for m in models for a in ("--model", str(setup / m))]
        reports[name] = tmp_path / name
        assert main([*argv, *common, "--out", str(reports[name])]) == 0, capsys.readouterr().err
    a, b, ab = (_melanoma_probs(reports[n]) for n in ("a", "b", "ab"))
    assert ab.keys() == a.keys() and len(ab) == 22
    assert max(abs(a[i] - b[i]) for i in a) > 1e-3  # two different models: a real mean
    for i in ab:
        assert ab[i] == pytest.approx((a[i] + b[i]) / 2, abs=2e-6), i


def test_ensemble_of_runs_with_other_splits_is_refused(setup, tmp_path, capsys):
    """Members trained on other held-out splits would have trained on the first run's validation
    images: refused before anything is read, unless both data sets are folders."""
    from tfmelanoma.config import load_config, save_config
    from tfmelanoma.evaluate import _check_same_splits

    runs = {}
    for name, overrides in {
        "s0": ["run.seed=0"],
        "s1": ["run.seed=1"],
        "s1_split0": ["run.seed=1", "data.split_seed=0"],
    }.items():
        runs[name] = tmp_path / name
        runs[name].mkdir()
        (runs[name] / "best.keras").write_bytes((setup / "m.keras").read_bytes())
        save_config(load_config("smoke", overrides), runs[name] / "config.yaml")
    out = tmp_path / "o"
    argv = ["--model", str(runs["s0"]), "--model", str(runs["s1"]), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{runs['s1']} was trained on other splits than {runs['s0']}" in err
    assert "split seed (data.split_seed, else run.seed) 1 (not 0)" in err
    assert "--set data.split_seed=N" in err and not out.exists()

    def args(*extra):
        return build_parser().parse_args(["--model", "a", "--model", "b", "--out", "o", *extra])

    configs = [load_config(str(runs[n] / "config.yaml")) for n in ("s0", "s1_split0")]
    _check_same_splits(args(), configs)  # seeds differ, the split is shared: accepted
    folders = args("--images-dir", "t", "--val-images-dir", "v")
    _check_same_splits(folders, [configs[0], load_config(str(runs["s1"] / "config.yaml"))])


def test_nine_class_model_on_class_folders(setup, tmp_path, capsys):
    """A harmonised-diagnosis (9-class) model evaluated on folders named after its classes: the
    folder's class index is read under the label key the evaluator uses for nine classes."""
    from tfmelanoma.labels import HARMONISED_CLASSES

    _save_model(tmp_path / "nine.keras", k=len(HARMONISED_CLASSES))
    _image_folders(tmp_path / "test", {"MEL": 4, "NV": 5}, 2)
    out = tmp_path / "report"
    argv = ["--model", str(tmp_path / "nine.keras"), "--images-dir", str(tmp_path / "test")]
    assert main([*argv, "--no-val", "--bootstrap", "0", "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    with (out / "predictions.csv").open() as fh:
        labels = {r["image_id"]: r["label"] for r in csv.DictReader(fh)}
    assert len(labels) == 9 and labels["MEL/MEL_000"] == "MEL" and labels["NV/NV_004"] == "NV"


def test_cli_mc_dropout_without_validation(setup, tmp_path, capsys):
    out = tmp_path / "mc"
    args = [
        "--images-dir",
        str(setup / "test"),
        "--class-map",
        "benign=non_melanoma,malignant=melanoma",
        "--out",
        str(out),
        "--bootstrap",
        "0",
        "--mc-dropout",
        "4",
    ]
    assert main(["--model", str(setup / "drop.keras"), *args]) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rejection"]["threshold"] is None  # no validation: nothing rejected
    assert main(["--model", str(setup / "m.keras"), *args, "--overwrite"]) == 2
    assert "has no Dropout layer" in capsys.readouterr().err


def test_cli_bad_inputs(setup, tmp_path, capsys):
    base = ["--model", str(setup / "m.keras"), "--out", str(tmp_path / "o"), "--bootstrap", "0"]
    # Folders that are not model classes, without --class-map.
    assert main([*base, "--images-dir", str(setup / "test")]) == 2
    assert "'benign' is not one of the model's classes" in capsys.readouterr().err
    # Model with 2 outputs against 3 named classes.
    assert main([*base, "--images-dir", str(setup / "test"), "--class-names", "a,b,c"]) == 2
    assert "outputs 2 probabilities but the classes are" in capsys.readouterr().err
    # Empty test folder.
    (tmp_path / "empty" / "melanoma").mkdir(parents=True)
    assert main([*base, "--images-dir", str(tmp_path / "empty")]) == 2
    assert "no images found" in capsys.readouterr().err
    # Threshold outside [0, 1]: refused before anything is loaded or written.
    assert main([*base, "--images-dir", str(setup / "test"), "--threshold", "1.5"]) == 2
    assert "must be in [0, 1]" in capsys.readouterr().err
    cmap = ["--class-map", "benign=non_melanoma,malignant=melanoma"]
    assert main([*base, "--images-dir", str(setup / "test"), *cmap, "--gradcam-ids", "nope"]) == 2
    assert "no test image with id 'nope'" in capsys.readouterr().err
    # An input size the saved model cannot take: named before any prediction, not Keras's
    # shape error from inside the first batch.
    assert main([*base, "--images-dir", str(setup / "test"), *cmap, "--image-size", "24"]) == 2
    assert "--image-size 24: " in (err := capsys.readouterr().err) and "16x16 input only" in err
    assert (
        main(["--model", str(tmp_path / "missing.keras"), "--out", "x", "--images-dir", "y"]) == 2
    )
    assert "expected a run folder or an existing .keras file" in capsys.readouterr().err
    (tmp_path / "broken.keras").write_bytes(b"not a zip file")
    assert main(["--model", str(tmp_path / "broken.keras"), "--out", "x", "--images-dir", "y"]) == 2
    assert (
        "broken.keras: not a readable .keras model (truncated or corrupt" in capsys.readouterr().err
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_on_real_kaggle_folder_layout(shared_data, setup, tmp_path, capsys):
    """The Kaggle set's official test/ layout (benign/, malignant/, repeated file names)."""
    root = shared_data / "kaggle_fanconic" / "test"
    out = tmp_path / "kaggle"
    rc = main(
        [
            "--model",
            str(setup / "m.keras"),
            "--images-dir",
            str(root),
            "--out",
            str(out),
            "--class-map",
            "benign=non_melanoma,malignant=melanoma",
            "--no-val",
            "--bootstrap",
            "100",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test"] == 660  # 360 benign + 300 malignant (data README)
    with (out / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["label"] == "melanoma" for r in rows) == 300
    assert len({r["image_id"] for r in rows}) == 660  # ids unique although file names repeat
