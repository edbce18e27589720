#!/usr/bin/env bash
# The real-GPU check, prepared to run in one go on a machine with an NVIDIA GPU, CuPy, numba-cuda,
# torch, h5py, pillow, pytest and scikit-image (PyMaxflow may come as a wheel: pip install it first).
#   1. the whole test suite on the GPU (the GPU tests run, the kernels run for real, not simulated);
#   2. VGG16 logits and saliency, GPU against CPU (in tests/minigrad/test_gpu_ops.py, <= 1e-4);
#   3. the benchmark against torch on CUDA at batch 1 and 32.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python -c "import minigrad as mg; assert mg.gpu_available(), 'no usable GPU'; print('GPU ok')"
python -m pytest -q -rs tests/minigrad/test_gpu_ops.py tests/minigrad/test_gpu_kernels.py
python -m pytest -q -x
python scripts/benchmark.py --device gpu --batches 1,32 --repeats 5 --no-memory
