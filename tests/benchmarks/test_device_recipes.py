"""benchmarks/device/recipes.py, make_data.py and run_recipes.sh: issues #18's and #16's GPU runs,
checked here — the configs the GPU steps would train, the carried float16 weights and re-encoded
images, and every recipe's CPU smoke form end to end with TensorFlow and imagehash hidden, as on the
GPU host."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.tf_hidden import GPU_HOST

ROOT = Path(__file__).resolve().parents[2]
DEVICE = ROOT / "benchmarks" / "device"


def _load(name: str):
    sys.path.insert(0, str(DEVICE))  # make_data imports recipes as its neighbour
    try:
        spec = importlib.util.spec_from_file_location(f"device_{name}", DEVICE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"device_{name}"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(DEVICE))
    return module


recipes = _load("recipes")


def test_kaggle_steps_train_the_cpu_rows_recipe_at_224_px(tmp_path):
    """The GPU steps' configs, as `python -m tfmelanoma.train` would load them: the transfer
    preset, the carried data and weights, the CPU rows' split, the seeds and epochs named."""
    train = importlib.import_module("tfmelanoma.train")  # the package attribute is the function

    data = tmp_path / "data"
    steps = recipes.plan("kaggle224", data, tmp_path / "work")
    assert [s.name for s in steps] == [
        "lite0_224_s0_e15", "lite0_224_s0_e30", "lite0_224_s1_e30", "ensemble3",
    ]  # fmt: skip
    for step, (seed, epochs) in zip(steps[:3], [(0, 15), (0, 30), (1, 30)], strict=True):
        assert step.argv[0] == "tfmelanoma.train" and step.keep_model
        cfg, run_dir = train._load(train.build_parser().parse_args(step.argv[1:]))
        assert run_dir == step.run_dir
        assert (cfg.model.name, cfg.model.weights) == (
            "efficientnet_lite0", str(data / recipes.WEIGHTS),
        )  # fmt: skip
        assert (cfg.data.image_size, cfg.data.data_dir) == (224, str(data))
        assert (tuple(cfg.data.train), cfg.data.test) == (("kaggle_fanconic",), "kaggle_fanconic")
        assert (cfg.data.val_fraction, cfg.split_seed) == (0.15, 0)
        assert (cfg.run.seed, cfg.run.epochs) == (seed, epochs)
        assert (cfg.optimizer.head_warmup_epochs, cfg.optimizer.backbone_lr_scale) == (2, 0.1)
    ensemble = steps[-1]
    assert ensemble.argv[0] == "tfmelanoma.evaluate"
    from tfmelanoma import evaluate

    args = evaluate.build_parser().parse_args(ensemble.argv[1:])
    assert [Path(m) for m in args.model] == [s.run_dir for s in steps[:3]]


def test_segmentation_steps_are_the_paper_recipe_at_256_px(tmp_path):
    from tfmelanoma import segment

    data = tmp_path / "data"
    aernet, unet = recipes.plan("seg256", data, tmp_path / "work")
    parser = segment.build_parser()
    for step, name in ((aernet, "aernet"), (unet, "unet")):
        args = parser.parse_args(step.argv[1:])
        cfg = segment.train_config(args)
        assert (cfg.model.name, cfg.data.image_size, cfg.run.epochs) == (name, 256, 25)
        assert (cfg.run.batch_size, cfg.run.monitor, cfg.data.data_dir) == (
            16,
            "val_dice",
            str(data),
        )
        assert cfg.optimizer.schedule == "warmup_cosine"
    assert aernet.argv[aernet.argv.index("--weights") + 1] == str(data / recipes.WEIGHTS)
    assert "--weights" not in unet.argv  # the U-Net trains from scratch
    with pytest.raises(ValueError, match="unknown recipe"):
        recipes.plan("kaggle128", data, tmp_path)


def test_web_student_steps_are_the_cpu_rows_teachers_and_a_longer_student(tmp_path):
    """webstudent: the `webdemo_teacher` run (16 epochs), the `xd_kaggle` run (Kaggle train/,
    merged against all three test sets) and the MeshNet student of the pair, all on the carried
    data; the student merges, excludes and splits exactly as its combination teacher."""
    train = importlib.import_module("tfmelanoma.train")

    data = tmp_path / "data"
    steps = recipes.plan("webstudent", data, tmp_path / "work")
    names = ["teacher_comb_e16", "teacher_kaggle_e15", f"student_a01_t4_e{recipes.STUDENT_EPOCHS}"]
    assert [s.name for s in steps] == names
    cfgs = []
    for step in steps:
        assert step.argv[0] == "tfmelanoma.train" and step.kind == "train"
        cfg, run_dir = train._load(train.build_parser().parse_args(step.argv[1:]))
        assert run_dir == step.run_dir
        assert (cfg.data.data_dir, cfg.data.image_size, cfg.run.seed) == (str(data), 128, 0)
        cfgs.append(cfg)
    teacher, kaggle, student = cfgs
    tests = "kaggle_fanconic, isic2017:validation, sample"
    gallery = ("ISIC_0000000", "ISIC_0000001", "ISIC_0000002", "ISIC_0000003", "ISIC_0000004",
               "ISIC_0000013")  # fmt: skip
    for cfg in (teacher, kaggle):
        assert (cfg.model.name, cfg.model.weights) == (
            "efficientnet_lite0", str(data / recipes.WEIGHTS),
        )  # fmt: skip
        assert cfg.data.test == tests and cfg.optimizer.backbone_lr_scale == 0.1
    assert (teacher.run.epochs, teacher.run.early_stopping, kaggle.run.epochs) == (16, 4, 15)
    assert tuple(kaggle.data.train) == ("kaggle_fanconic",) and kaggle.data.val_fraction == 0.15
    assert tuple(teacher.data.train) == ("kaggle_fanconic", "isic2017", "sample")
    assert tuple(teacher.data.exclude) == gallery
    for key in ("train", "test", "exclude", "val_fraction", "split_seed", "image_size", "label"):
        assert getattr(student.data, key) == getattr(teacher.data, key), key
    assert (student.model.name, student.model.weights) == ("meshnet", "")
    assert student.model.teacher == f"{steps[0].run_dir}, {steps[1].run_dir}"
    assert (student.model.distill_alpha, student.model.distill_temperature) == (0.1, 4.0)
    assert student.run.epochs == recipes.STUDENT_EPOCHS > 40
    assert [(s.keep_model, s.keep_run) for s in steps] == [(True, False)] * 2 + [(False, True)]


def test_web_student224_steps_are_224_px_kaggle_teachers_the_combination_one_and_a_student(
    tmp_path,
):
    """webstudent224: two Lite0 teachers at 224 px (seeds 0, 1) on Kaggle train/ merged against
    all three web test sets, on webstudent's 128 px carry; webstudent's combination teacher;
    each teacher under its own time limit; then the MeshNet student of the three on the
    combination, kept by validation AUC."""
    train = importlib.import_module("tfmelanoma.train")

    data = tmp_path / "data"
    steps = recipes.plan("webstudent224", data, tmp_path / "work")
    *teachers, student_step = steps
    names = ["teacher_kaggle224_s0_e15", "teacher_kaggle224_s1_e15", "teacher_comb_e16"]
    assert [s.name for s in teachers] == names
    assert student_step.name == f"student224_a01_t4_e{recipes.STUDENT224_EPOCHS}"
    cfgs = []
    for step in steps:
        assert step.argv[0] == "tfmelanoma.train" and step.kind == "train"
        cfg, run_dir = train._load(train.build_parser().parse_args(step.argv[1:]))
        assert run_dir == step.run_dir and cfg.data.data_dir == str(data)
        cfgs.append(cfg)
    *kaggle_cfgs, comb, student = cfgs
    web = recipes.plan("webstudent", data, tmp_path / "web")
    web_comb = train._load(train.build_parser().parse_args(web[0].argv[1:]))[0]
    assert comb == web_comb  # the same run as webstudent's combination teacher
    for seed, cfg in enumerate(kaggle_cfgs):
        assert (cfg.model.name, cfg.model.weights) == (
            "efficientnet_lite0", str(data / recipes.WEIGHTS),
        )  # fmt: skip
        assert (cfg.data.image_size, cfg.run.seed, cfg.run.epochs) == (224, seed, 15)
        assert tuple(cfg.data.train) == ("kaggle_fanconic",) and cfg.data.val_fraction == 0.15
        assert cfg.data.test == comb.data.test and cfg.optimizer.backbone_lr_scale == 0.1
    for key in ("train", "test", "exclude", "val_fraction", "split_seed", "image_size", "label"):
        assert getattr(student.data, key) == getattr(comb.data, key), key
    assert (student.model.name, student.model.weights, student.run.seed) == ("meshnet", "", 0)
    assert student.model.teacher == ", ".join(str(s.run_dir) for s in teachers)
    assert (student.model.distill_alpha, student.model.distill_temperature) == (0.1, 4.0)
    assert (student.run.epochs, student.run.monitor) == (recipes.STUDENT224_EPOCHS, "val_auc")
    limits = [recipes.TEACHER224_LIMIT] * 2 + [recipes.COMB_TEACHER_LIMIT]
    assert [(s.keep_model, s.keep_run, s.limit) for s in steps] == [
        *((True, False, limit) for limit in limits), (False, True, None)
    ]  # fmt: skip
    assert 550 - sum(limits) >= 180  # BUDGET=560 leaves the student its 30 epochs


def test_a_step_limit_caps_its_time_below_the_budget(tmp_path, monkeypatch):
    """A step with `limit` is stopped at it though the budget has more, and the next step
    still runs with what is left."""
    (tmp_path / "sleeper.py").write_text("import time; time.sleep(60)\n")
    (tmp_path / "quick.py").write_text("print('quick ran')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    steps = [
        recipes.Step("teacher", ["sleeper"], tmp_path / "t", "train", limit=2),
        recipes.Step("student", ["quick"], tmp_path / "s", "evaluate"),
    ]
    monkeypatch.setattr(recipes, "plan", lambda *a, **k: steps)
    t0 = time.monotonic()
    result = recipes.run("webstudent224", tmp_path, tmp_path / "OUT", tmp_path / "w",
                         budget=120, min_step=1)  # fmt: skip
    assert time.monotonic() - t0 < 30
    assert result["steps"]["teacher"]["exit"] == "timeout"
    assert result["steps"]["student"]["exit"] == 0 and result["skipped"] == []
    assert "quick ran" in (tmp_path / "OUT" / "log").read_text()


def test_float16_backbone_gives_the_imagenet_features(tmp_path):
    """make_data.py's carried weights: under 7 MiB, and the backbone they load matches the
    package's float32 checkpoint to float16 precision."""
    pytest.importorskip("torch")
    import keras

    from tfmelanoma.models import create_model

    make_data = _load("make_data")
    path = tmp_path / recipes.WEIGHTS
    size = make_data.write_fp16_backbone(path)
    assert size < 7 * 2**20
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    outputs = []
    for weights in ("imagenet", str(path)):
        keras.utils.set_random_seed(0)
        model = create_model("efficientnet_lite0", input_shape=(64, 64, 3), weights=weights,
                             include_head=False)  # fmt: skip
        outputs.append(np.asarray(model(x, training=False)))
    # float16 kernels (relative rounding 2**-11) through ~50 layers: measured 0.7 % of the
    # features' scale, mean and max; another initialisation would differ by ~100 %.
    ref, got = outputs
    assert np.abs(ref - got).mean() < 0.015 * np.abs(ref).mean()
    assert np.abs(ref - got).max() < 0.02 * np.abs(ref).max()


def test_recompressed_records_keep_every_field_but_the_jpeg(tmp_path):
    """`recompress` (kaggle224's quality 85): the same examples in the same order, labels and
    hashes untouched, images the same size and close in value, the file smaller."""
    from tfmelanoma.datasets import get_builder

    make_data = _load("make_data")
    builder = get_builder("sample", str(tmp_path), file_format="array_record")
    before = builder.as_data_source()["train"]
    rows = [before[i] for i in range(len(before))]
    (shard,) = Path(builder.data_dir).glob("*-train.array_record-*")
    old_size = shard.stat().st_size
    make_data.recompress(shard, 85)
    assert shard.stat().st_size < 0.8 * old_size
    after = get_builder("sample", str(tmp_path), file_format="array_record")
    after = after.as_data_source()["train"]
    assert len(after) == len(rows)
    for i, row in enumerate(rows):
        new = after[i]
        for key in ("image_id", "label", "sha256", "phash", "diagnosis"):
            assert new[key] == row[key], (i, key)
        assert new["image"].shape == row["image"].shape
        diff = np.abs(new["image"].astype(int) - row["image"].astype(int)).mean()
        assert 0 < diff < 4, (i, diff)


def test_web_carry_stores_the_pixels_training_makes(tmp_path):
    """webstudent's carry (`recompress` with a size): each image is the 128 x 128 that the
    training pipeline's resize makes of the original, within JPEG rounding, so the host's own
    resize is the identity; ids, labels and the merge's hashes stay; the presets agree on 128."""
    import yaml

    from tfmelanoma.data.image_ops import resize_np
    from tfmelanoma.datasets import get_builder

    make_data = _load("make_data")
    for preset in ("webdemo", "webdemo_teacher"):
        text = (ROOT / "tfmelanoma" / "configs" / f"{preset}.yaml").read_text()
        assert yaml.safe_load(text)["data"]["image_size"] == make_data.WEB_SIZE
    builder = get_builder("sample", str(tmp_path), file_format="array_record")
    source = builder.as_data_source()["train"]
    rows = [source[i] for i in range(len(source))]
    (shard,) = Path(builder.data_dir).glob("*-train.array_record-*")
    make_data.recompress(shard, 90, make_data.WEB_SIZE)
    after = get_builder("sample", str(tmp_path), file_format="array_record")
    after = after.as_data_source()["train"]
    assert len(after) == len(rows) > 100
    assert {row["image"].shape[:2] for row in rows} - {(128, 128)}  # resized, not as stored
    for i, row in enumerate(rows):
        new = after[i]
        for key in ("image_id", "label", "sha256", "phash"):
            assert new[key] == row[key], (i, key)
        assert new["image"].shape == (128, 128, 3)
        expected = resize_np(row["image"], make_data.WEB_SIZE)
        diff = np.abs(new["image"].astype(float) - expected).mean()
        assert diff < 3, (i, diff)


def test_a_step_that_runs_out_of_time_still_returns_its_best_epoch(tmp_path, monkeypatch):
    """A training step killed at its time limit: recorded as a timeout with the epochs it did,
    and its best epoch so far (best.keras, written on every improvement) and run folder still
    come back, to evaluate here."""
    (tmp_path / "slow_train.py").write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "run = Path(sys.argv[1]); (run / 'checkpoints').mkdir(parents=True)\n"
        "(run / 'best.keras').write_bytes(b'epoch 2')\n"
        "(run / 'checkpoints' / 'epoch-0002.keras').write_bytes(b'resume state')\n"
        "(run / 'history.csv').write_text('epoch,val_auc\\n0,0.5\\n1,0.7\\n')\n"
        "print('two epochs done', flush=True); time.sleep(60)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    run_dir = tmp_path / "work" / "student"
    step = recipes.Step("student", ["slow_train", str(run_dir)], run_dir, "train",
                        keep_model=True, keep_run=True)  # fmt: skip
    monkeypatch.setattr(recipes, "plan", lambda *a, **k: [step])
    out = tmp_path / "OUT"
    result = recipes.run("webstudent", tmp_path, out, tmp_path / "work", budget=3, min_step=1)
    entry = result["steps"]["student"]
    assert entry["exit"] == "timeout" and entry["history"]["val_auc"] == [0.5, 0.7]
    assert (out / "student.keras").read_bytes() == b"epoch 2"
    with tarfile.open(out / "student.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["student", "student/best.keras", "student/history.csv"]
    assert "two epochs done" in (out / "log").read_text()
    assert json.loads((out / "recipes.json").read_text())["steps"]["student"]["exit"] == "timeout"


@pytest.fixture(scope="module")
def recipe_data(tmp_path_factory) -> Path:
    """The sample (for the kaggle224 smoke form) and ISIC 2017's segmentation config, both as
    ArrayRecord, with the float16 weights: what make_data.py carries, at smoke size."""
    from tfmelanoma.datasets import get_builder

    data = tmp_path_factory.mktemp("recipe-data")
    get_builder("sample", str(data), file_format="array_record")
    isic2017 = ROOT.parent / "shared" / "data" / "isic2017"
    if isic2017.is_dir():
        get_builder("isic2017/segmentation_512", str(data), manual_dir=isic2017,
                    file_format="array_record")  # fmt: skip
    if importlib.util.find_spec("torch"):
        _load("make_data").write_fp16_backbone(data / recipes.WEIGHTS)
    return data


@pytest.mark.slow
@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_recipe_cpu_smoke_form_without_tensorflow(recipe, recipe_data, tmp_path):
    """run_recipes.sh as the GPU host runs it, every step at smoke size, TensorFlow and imagehash
    (so the project's builders) hidden from every process: each step exits 0, recipes.json holds
    its figures, at most 8 files return."""
    if recipe == "seg256" and not (recipe_data / "isic2017").is_dir():
        pytest.skip("needs ../shared/data/isic2017")
    if recipe == "seg256" and not (recipe_data / recipes.WEIGHTS).is_file():
        pytest.skip("the float16 weights need PyTorch (the dev extra)")
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(GPU_HOST)
    out = tmp_path / "OUT"
    env = dict(
        os.environ, OUT=str(out), SMOKE="1", WHEELS="", PYTHON=sys.executable, RECIPE=recipe,
        DATA_DIR=str(recipe_data), PYTHONPATH=str(hide),
    )  # fmt: skip
    run = subprocess.run(
        ["bash", str(DEVICE / "run_recipes.sh")],
        capture_output=True, text=True, timeout=900, env=env, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((out / "recipes.json").read_text())
    names = [s.name for s in recipes.plan(recipe, recipe_data, tmp_path)]
    assert list(result["steps"]) == names and result["skipped"] == []
    for name, step in result["steps"].items():
        assert step["exit"] == 0 and "error" not in step, (name, step)
    back = sorted(p.name for p in out.iterdir())
    assert len(back) <= 8
    if recipe.startswith("webstudent"):  # the teachers as models, the student as its run folder
        *teachers, top = names
        assert back == sorted([*(f"{t}.keras" for t in teachers), f"{top}.tar.gz", "log",
                               "recipes.json"])  # fmt: skip
        with tarfile.open(out / f"{top}.tar.gz") as tar:
            members = set(tar.getnames())
        assert {f"{top}/best.keras", f"{top}/config.yaml", f"{top}/metrics.json"} <= members
        assert any(m.startswith(f"{top}/evaluation/") for m in members)
        assert not any(m.startswith((f"{top}/checkpoints", f"{top}/tensorboard")) for m in members)
    if recipe != "seg256":
        if recipe == "kaggle224":
            assert back == ["lite0_224_s0_e15.keras", "lite0_224_s0_e30.keras",
                            "lite0_224_s1_e30.keras", "log", "recipes.json"]  # fmt: skip
        for name in names:
            test = result["steps"][name]["test"]
            assert test["n_test"] == 112 and 0 <= test["auc_roc"] <= 1
        assert len(result["steps"][names[0]]["history"]["val_auc"]) == 1
    else:
        assert back == ["log", "recipes.json"]
        for name in names:
            step = result["steps"][name]
            assert step["n_images"] == 4 and 0 <= step["dice"] <= 1 and step["best_epoch"] == 1
    log = (out / "log").read_text()
    assert f"SUMMARY {recipe}: {len(names)} steps, failed none, skipped none" in log
    assert "run_recipes.sh: exit 0" in log
