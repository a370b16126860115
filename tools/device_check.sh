#!/usr/bin/env bash
# Device check for a machine with an NVIDIA GPU (a Jetson or a desktop/server GPU); < 10 minutes.
#
#   bash tools/device_check.sh            # results and logs in runs/device_check (OUT=... to change)
#   NO_TORCH=1 bash tools/device_check.sh # skip the CUDA torch install (multi-GB; the engine does not need it)
#   WHEELS=/path/to/wheels bash tools/...  # install from local wheels too (machines without the internet)
#   NO_INSTALL=1 bash tools/device_check.sh  # install nothing (a Jetson with JetPack's TensorRT, a prepared box)
#
# 1. installs what the GPU path needs, each step time-boxed: the project (camera, quantize, dev
#    extras), cuda-python matching the driver's CUDA major, TensorRT where it can be installed
#    (NVIDIA's wheels download from pypi.nvidia.com at install time; JetPack ships its own), and a
#    CUDA build of torch for the training side (optional),
# 2. runs the tests marked `tensorrt` (real builds on this GPU: FP32 / FP16 / INT8 parity with ONNX
#    Runtime, batch 1 and 8 latency, threads, cache, version-compatible plans),
# 3. compare-engines onnxruntime vs TensorRT FP32 / FP16 / INT8 on simulator crops,
# 4. benchmark --engine tensorrt (the whole device path),
# and prints which steps passed. Exit status 0 only if TensorRT was usable and every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device_check}
mkdir -p "$OUT"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
PIP=("$PY" -m pip install -q)
[[ -n "${WHEELS:-}" ]] && PIP+=(--find-links "$WHEELS")
declare -A RESULT
log() { echo "[device_check $(date +%T)] $*" | tee -a "$OUT/device_check.log"; }
step() {  # step NAME SECONDS COMMAND...: run with a time box, keep its output, record pass/fail
  local name=$1 seconds=$2; shift 2
  log "$name ..."
  if timeout "$seconds" "$@" >"$OUT/$name.log" 2>&1; then RESULT[$name]=pass; else RESULT[$name]="FAIL ($?)"; fi
  log "$name: ${RESULT[$name]} (log $OUT/$name.log)"
}
step_json() {  # like step, but stdout (a JSON report) goes to NAME.json and stderr to NAME.log
  local name=$1 seconds=$2; shift 2
  log "$name ..."
  if timeout "$seconds" "$@" >"$OUT/$name.json" 2>"$OUT/$name.log"; then RESULT[$name]=pass; else RESULT[$name]="FAIL ($?)"; fi
  log "$name: ${RESULT[$name]} (report $OUT/$name.json, log $OUT/$name.log)"
}

if ! nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1; then
  log "nvidia-smi failed: no NVIDIA driver or GPU here"
fi
cuda_major=$(sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' "$OUT/nvidia-smi.txt" | head -1)
cuda_major=${cuda_major:-12}
log "driver CUDA major: $cuda_major"

if [[ "${NO_INSTALL:-0}" != 1 ]]; then
"$PY" -c "import sdk, onnx, pyrealsense2" 2>/dev/null || step install_project 240 "${PIP[@]}" -e ".[camera,quantize,dev]"
step install_cuda_python 120 "${PIP[@]}" "cuda-python>=${cuda_major},<$((cuda_major + 1))"
if ! "$PY" -c "import tensorrt" 2>/dev/null; then
  step install_tensorrt 180 "${PIP[@]}" "tensorrt-cu${cuda_major}"
fi
if [[ "${NO_TORCH:-0}" != 1 ]] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
  step install_cuda_torch 240 "${PIP[@]}" torch --index-url "https://download.pytorch.org/whl/cu${cuda_major}8"
fi
fi

"$PY" - >"$OUT/versions.txt" 2>&1 <<'PYEOF'
import importlib
for name in ("tensorrt", "tensorrt_lean", "cuda.bindings", "pycuda", "onnxruntime", "onnx", "torch"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "installed"))
    except Exception as error:  # report, never stop the check
        print(name, "missing:", type(error).__name__, error)
try:
    from sdk.engine.cuda_memory import select_backend
    backend = select_backend()
    print("gpu", backend.name, backend.gpu_info())
except Exception as error:
    print("gpu unavailable:", error)
PYEOF
cat "$OUT/versions.txt" | tee -a "$OUT/device_check.log"
if ! "$PY" -c "import tensorrt" 2>/dev/null; then
  log "TensorRT is not importable here: the GPU figures cannot be measured on this machine"
  RESULT[tensorrt_available]="FAIL (not installable here)"
else
  RESULT[tensorrt_available]=pass
fi

step pytest_tensorrt 300 "$PY" -m pytest -q -m tensorrt -rs -s tests/test_tensorrt_gpu.py
step_json compare_engines 150 "$PY" -m sdk.cli compare-engines --engines onnxruntime,tensorrt,tensorrt-fp16,tensorrt-int8 \
  --crops 64 --json
step_json benchmark_tensorrt 120 "$PY" -m sdk.cli benchmark --engine tensorrt --frames 120 --json

log "summary:"
status=0
for name in "${!RESULT[@]}"; do
  log "  $name: ${RESULT[$name]}"
  [[ "${RESULT[$name]}" == pass || "$name" == install_* ]] || status=1
done
grep -E "latency|max \|dP\||TensorRT [0-9]" "$OUT/pytest_tensorrt.log" 2>/dev/null | tee -a "$OUT/device_check.log"
exit $status
