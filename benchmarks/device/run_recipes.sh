#!/usr/bin/env bash
# Issues 18's and 16's GPU runs, one device call per recipe (benchmarks/device/recipes.py):
# RECIPE=kaggle224 (EfficientNet-Lite0 at 224 px on Kaggle fanconic: the CPU row's 15 epochs, then
# 30 epochs with two seeds, then their ensemble), RECIPE=seg256 (AER-Net with the Lite0 ImageNet
# encoder, then a plain U-Net, on ISIC 2017 at 256 px, 25 epochs each) or RECIPE=webstudent (the
# web model: two Lite0 teachers at 128 px, then the MeshNet distilled from them for 60 epochs) or
# RECIPE=webstudent224 (three Lite0 teachers at 224 px on Kaggle, then their MeshNet student for
# 40 epochs, kept by validation AUC; on webstudent's carry).
#
# Here, first (TensorFlow and PyTorch prepare; 58 MiB carried for kaggle224, 57 for webstudent):
#   bash benchmarks/device/make_carry.sh                     # .whl/
#   python benchmarks/device/make_data.py --recipe kaggle224  # .gpu-data/ (or seg256, webstudent)
# Then one `run` call: command "RECIPE=kaggle224 bash benchmarks/device/run_recipes.sh", carry
# [".whl", ".gpu-data"], timeout_s 600. It ends within BUDGET seconds (default 540) of its start
# and leaves in $OUT: recipes.json (rewritten after every step), log, and for kaggle224 and the web
# recipes the models (<step>.keras, the student's run as <step>.tar.gz) to evaluate (and export) here.
#
# Environment: RECIPE, BUDGET, and for the CPU smoke form (tests): SMOKE=1, WHEELS="", PYTHON,
# DATA_DIR.
set -uo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
: "${OUT:?OUT must name the folder for the results}"
: "${RECIPE:?RECIPE must be kaggle224, seg256, webstudent or webstudent224}"
log="$OUT/log"
. benchmarks/device/host_env.sh

budget=$(( ${BUDGET:-540} - ($(date +%s) - t0) - 10 ))
smoke=()
[ "${SMOKE:-0}" = 1 ] && smoke=(--smoke)
"$py" benchmarks/device/recipes.py "$RECIPE" --data "${DATA_DIR:-.gpu-data}" --out "$OUT" \
  --budget "$budget" "${smoke[@]}" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
echo "run_recipes.sh: exit $rc after $(( $(date +%s) - t0 )) s" | tee -a "$log"
exit "$rc"
