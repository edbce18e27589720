#!/usr/bin/env bash
# The GPU's own checks, in one go, for a machine where a GPU is scarce: within 10 minutes in all.
# Needs the project installed with a GPU extra and the test extra (pip install -e '.[gpu-cuda13,test]',
# or '.[gpu,test]' for CUDA 12), and PyTorch with CUDA for the benchmark's reference (optional).
#   1. versions: the driver and the CUDA it supports, CuPy and its CUDA, Numba and numba-cuda;
#   2. smoke test: the --device gpu check (a CuPy matmul, a kernel launch), then a convolution, ReLU
#      and pooling forward and backward on the GPU against the CPU; stops here if it fails;
#   3. the GPU tests: the kernels for real (not simulated) against the CPU kernels, the ops'
#      gradient checks in float64, and the GPU-vs-CPU network checks (VGG16 logits and saliency,
#      SmoothGrad, 10 crops; Winograd off on the CPU side, so that both run im2col + GEMM);
#   4. the benchmark against PyTorch on CUDA, TF32 off on both sides (CuPy's GEMMs are strict float32).
# Each step has its own time limit (30 + 60 + 240 + 240 s); the exit status is 0 only if all passed.
set -uo pipefail
case "${1-}" in
    -h|--help) echo "usage: bash scripts/gpu_check.sh   (no arguments)"; sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
               exit 0 ;;
    "") ;;
    *) echo "gpu_check.sh: error: unknown argument $1 (it takes none; --help says what it does)" >&2; exit 2 ;;
esac
case "${MINIGRAD_OPS-fast}" in
    simple|fast) ;;
    *) echo "gpu_check.sh: error: MINIGRAD_OPS: unknown ops tier '$MINIGRAD_OPS'; choose one of simple, fast" >&2
       exit 2 ;;
esac
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PY=${PYTHON:-python}
failed=0

step() {   # step LIMIT_S NAME COMMAND...: run it under its time limit, say how it went
    local limit=$1 name=$2 start=$SECONDS rc
    shift 2
    echo "=== $name (limit ${limit} s)"
    timeout --kill-after=10 "$limit" bash -c '"$@"' "$name" "$@"     # bash -c: the steps may be functions
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "=== $name: ok, $((SECONDS - start)) s"
    else
        [ "$rc" -eq 124 ] && echo "=== $name: TIMED OUT after $limit s" || echo "=== $name: FAILED (exit $rc)"
        failed=1
    fi
    return "$rc"
}

versions() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || echo "nvidia-smi failed"
    nvidia-smi 2>/dev/null | grep -o "CUDA Version: [0-9.]*" || true      # the newest CUDA the driver supports
    "$PY" - <<'EOF'
from importlib.metadata import PackageNotFoundError, version
for package in ("cupy-cuda13x", "cupy-cuda12x", "numba", "numba-cuda", "cuda-bindings", "torch"):
    try:
        print(f"{package} {version(package)}")
    except PackageNotFoundError:
        pass
try:
    import cupy
    rt, drv = cupy.cuda.runtime.runtimeGetVersion(), cupy.cuda.runtime.driverGetVersion()
    print(f"CuPy's CUDA runtime {rt // 1000}.{rt % 1000 // 10}, driver's CUDA {drv // 1000}.{drv % 1000 // 10}")
except Exception as e:
    print("CuPy:", " ".join(f"{type(e).__name__}: {e}".split()))
EOF
}

smoke() {
    "$PY" - <<'EOF'
import sys
import numpy as np
import minigrad as mg
from minigrad import functional as F, tiers
problem = tiers.gpu_problem()
if problem:
    sys.exit(f"--device gpu: no usable GPU: {problem}")
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 20, 18)).astype(np.float32)
w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
results = []
for device in ("cpu", "gpu"):
    t = mg.Tensor(mg.to_device(x, device), requires_grad=True)
    out = F.max_pool2d(F.relu(F.conv2d(t, mg.Tensor(mg.to_device(w, device)), padding=1)), 2)
    out.sum().backward()
    results.append((backend.to_numpy(out.data), backend.to_numpy(t.grad)))
for name, cpu, gpu in zip(("forward", "input gradient"), *results):
    err = float(np.abs(gpu - cpu).max() / np.abs(cpu).max())
    print(f"{name}: GPU against CPU, largest relative difference {err:.1e}")
    if not err < 1e-5:
        sys.exit(f"{name} differs: {err:.1e}")
EOF
}

export -f versions smoke
step 30 "versions" versions
step 60 "smoke test" smoke || { echo "=== the GPU path does not work: stopping here"; exit 1; }
step 240 "GPU tests" "$PY" -m pytest -q -rs -p no:cacheprovider -k gpu tests/minigrad/test_gpu_*.py \
    tests/scripts/test_saliency_scripts.py tests/models/test_classify_script.py
step 240 "benchmark" env NVIDIA_TF32_OVERRIDE=0 "$PY" scripts/benchmark.py --device gpu --batches 1,32 --rounds 3 --repeats 5 --no-memory
exit "$failed"
