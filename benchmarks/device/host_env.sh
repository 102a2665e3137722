# Sourced by the device scripts (run_gpu.sh, run_recipes.sh) from the repo root: installs the
# carried wheels into a temporary folder, puts it and the checkout on PYTHONPATH, selects Keras on
# JAX and logs the machine. Needs: OUT (set), log (the log file); optional PYTHON, WHEELS (default
# .whl; "" = the current environment, the CPU smoke forms).
py=${PYTHON:-python3}
wheels=${WHEELS-.whl}
mkdir -p "$OUT"
echo "$(basename "$0") $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo no-git)" | tee "$log"
if [ -n "$wheels" ]; then
  site=$(mktemp -d)
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
    "$wheels"/*.whl >> "$log" 2>&1 || { echo "wheel install failed" | tee -a "$log"; exit 1; }
  export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  echo "cores $(nproc)"; uptime; } | tee -a "$log"
