"""Every numba.cuda kernel compiled for a current GPU architecture (sm_90), on any machine.

numba-cuda compiles to PTX with NVVM and needs no GPU or driver for it; nvJitLink then assembles the
PTX into sm_90 machine code. Both come with the ``test-cuda`` extra (numba-cuda and cuda-toolkit);
without it these tests skip. The compile runs in a subprocess because this test session runs the
CUDA simulator (conftest.py), which has no compiler. Besides compiling, the PTX shows the properties
the kernels are written for: no 64-bit integer division (emulated on a GPU: 32-bit unsigned indices
instead) and, for float32 arrays, no float64 instruction (accumulators and constants in the array's
dtype).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (the test-cuda extra: "
                                         "pip install -e '.[test-cuda]')")

ROOT = Path(__file__).resolve().parents[2]
CC = "9.0"


@pytest.fixture(scope="module")
def compiled():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    r = subprocess.run([sys.executable, "-m", "tests.minigrad.compile_gpu_kernels", CC], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        if "DynamicLibNotFoundError" in last or "No module named 'numba.cuda'" in last:
            pytest.skip(f"numba-cuda's compiler libraries are not installed (the test-cuda extra: "
                        f"pip install -e '.[test-cuda]'): {last}")
        pytest.fail(f"compiling the kernels failed:\n{r.stderr[-3000:]}")
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return lines[0]["kernels"], lines[1:], lines[0]["occupancy_warnings"]


def test_every_kernel_compiles_for_sm90(compiled):
    kernels, results, _ = compiled
    assert len(kernels) >= 8, kernels
    for dtype in ("float32", "float64"):
        done = {r["kernel"] for r in results if r["dtype"] == dtype}
        assert done == set(kernels), f"{dtype}: compiled {sorted(done)}, the module has {kernels}"
    for r in results:
        assert r["target"] == "sm_90", r
        assert r["cached"], f"{r['kernel']}: not compiled with cache=True"
        assert r["cubin_bytes"], f"{r['kernel']}: the PTX did not assemble to sm_90 machine code: {r}"


def test_kernels_use_32_bit_division_and_no_float64_on_float32(compiled):
    for r in compiled[1]:
        assert r["int64_div"] == 0, f"{r['kernel']} ({r['dtype']}): {r['int64_div']} 64-bit div/rem in its PTX"
        if r["dtype"] == "float32":
            assert r["f64"] == 0, f"{r['kernel']} (float32): {r['f64']} float64 instructions in its PTX"


def test_small_launches_do_not_warn_of_low_occupancy(compiled):
    assert compiled[2] == [0, 1]        # silenced by gpu_kernels; Numba's warning without its filter
