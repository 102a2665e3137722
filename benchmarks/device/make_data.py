"""Prepares the benchmark's data carry for the GPU host: Kaggle fanconic as ArrayRecord.

Run here (TensorFlow prepares; the GPU host only reads, through `tfds.data_source`):

    python benchmarks/device/make_data.py [--out .gpu-data] [--train 1600]

Writes `<out>/kaggle_fanconic/...` from `../shared/data/kaggle_fanconic` (224 px) and keeps the
first `--train` training records (TFDS stores them shuffled, so both classes stay mixed) and the
whole test split, so that data and wheels fit the 64 MiB a device call carries (all 2,637
training images are 43.6 MB, the 660 test images 10.9 MB, the wheels ~15 MB). Prints the size.
"""

from __future__ import annotations

import argparse
import json
import shutil
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / ".gpu-data")
    p.add_argument("--train", type=int, default=1600, help="training records kept")
    p.add_argument("--manual-dir", default=str(ROOT.parent / "shared" / "data" / "kaggle_fanconic"))
    args = p.parse_args()
    from tfmelanoma.datasets import get_builder

    shutil.rmtree(args.out, ignore_errors=True)
    builder = get_builder(
        "kaggle_fanconic", args.out, manual_dir=args.manual_dir, file_format="array_record"
    )
    folder = Path(builder.data_dir)
    info_file = folder / "dataset_info.json"
    info = json.loads(info_file.read_text())
    for split in info["splits"]:
        if split["name"] == "train" and int(split["shardLengths"][0]) > args.train:
            (shard,) = folder.glob("kaggle_fanconic-train.array_record-*")
            split["numBytes"] = str(shorten(shard, args.train))
            split["shardLengths"] = [str(args.train)]
    info_file.write_text(json.dumps(info, indent=2))
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{folder}: train {args.train}, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
