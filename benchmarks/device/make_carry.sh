#!/usr/bin/env bash
# Builds the carry folder for benchmarks/gpu_throughput.py on the GPU host (../shared/GPU.md):
# Python 3.12 wheels of what that host lacks (Keras, TFDS and their small dependencies, pinned to
# the versions this project uses; grain for data.pipeline=grain) plus tfmelanoma itself as a wheel, into .whl/ (git-ignored).
# Prints the folder's size, which must stay under the 64 MiB a device call may carry.
#
# Usage (repo root): bash benchmarks/device/make_carry.sh [OUT_DIR]   (default .whl)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-.whl}"
python="${PYTHON:-python3}"
rm -rf "$out"
mkdir -p "$out"

# Versions of the dev environment (setup.cfg pins keras and tensorflow-datasets).
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$out" \
  keras==3.15.1 optree namex tensorflow-datasets==4.9.10 array_record dm-tree immutabledict \
  simple_parsing tensorflow-metadata toml termcolor docstring_parser googleapis-common-protos \
  grain==0.2.18 cloudpickle portpicker etils
# promise has only an sdist: build its (pure-Python) wheel here.
"$python" -m pip wheel -q --no-deps -w "$out" promise
# The project itself (pure Python; its runtime needs beyond the above are on the host).
"$python" -m pip wheel -q --no-deps -w "$out" .

# Two versions of one package would stop the install on the host.
dupes=$(ls "$out" | sed -E 's/-[0-9].*//' | tr '[:upper:]-' '[:lower:]_' | sort | uniq -d)
if [ -n "$dupes" ]; then
  echo "more than one wheel of: $dupes" >&2
  exit 1
fi
ls -1 "$out"
bytes=$(du -sb "$out" | cut -f1)
echo "carry folder $out: $(ls "$out" | wc -l) wheels, $((bytes / 1024 / 1024)) MiB ($bytes bytes; limit 64 MiB)"
if [ "$bytes" -ge $((64 * 1024 * 1024)) ]; then
  echo "over the 64 MiB a device call may carry" >&2
  exit 1
fi
