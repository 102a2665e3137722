#!/usr/bin/env bash
# Issue 15's whole GPU step in one device call: PyTorch eager vs our `model.fit` end to end (B0, B1,
# 224 px, bf16, batch 128) on Kaggle fanconic as ArrayRecord, loader alone, compile first/second
# with JAX's persistent cache (benchmarks/gpu_throughput.py; docs/benchmarks.md).
#
# Here, first (TensorFlow prepares the data; about 51 MiB carried in all):
#   bash benchmarks/device/make_carry.sh        # .whl/: keras, tfds, grain, ... and tfmelanoma
#   python benchmarks/device/make_data.py       # .gpu-data/: kaggle_fanconic, 1,600 train + test
# Then one `run` call: command "bash benchmarks/device/run_gpu.sh", carry [".whl", ".gpu-data"],
# timeout_s 600. It ends within BUDGET seconds (default 540) of its start and leaves in $OUT:
# gpu_throughput.json (rewritten after every measurement) and log (everything printed).
#
# Environment: PIPELINE (data.pipeline, default auto), BUDGET, and for the CPU smoke form (tests):
# SMOKE=1 (tiny sizes on the CPU), WHEELS="" (use the current environment), PYTHON, DATA_DIR,
# DATASET.
set -uo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
: "${OUT:?OUT must name the folder for the results}"
log="$OUT/log"
. benchmarks/device/host_env.sh

if [ "${SMOKE:-0}" = 1 ]; then
  sizes=(--device cpu --models b0 --batch 4 --image-size 32 --steps 2 --warmup 1 --workers 2)
else
  sizes=(--device gpu --models b0,b1 --steps 60 --warmup 8)
fi
budget=$(( ${BUDGET:-540} - ($(date +%s) - t0) - 10 ))
work=$(mktemp -d)  # per-stage JSON and the compilation cache: not brought back
timeout $((budget + 20)) "$py" benchmarks/gpu_throughput.py "${sizes[@]}" \
  --pipeline "${PIPELINE:-auto}" --data-dir "${DATA_DIR:-.gpu-data}" \
  --dataset "${DATASET:-kaggle_fanconic}" --budget "$budget" --work "$work" \
  --out "$OUT/gpu_throughput.json" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
echo "run_gpu.sh: exit $rc after $(( $(date +%s) - t0 )) s" | tee -a "$log"
exit "$rc"
