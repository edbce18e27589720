"""Compile every numba.cuda kernel of minigrad/fast/gpu_kernels.py for a real GPU architecture, no
GPU needed: ``python -m tests.minigrad.compile_gpu_kernels 9.0``.

Each launcher is called on small NumPy arrays with ``_launch`` replaced by a recorder, so the kernels
are compiled for exactly the argument types the launchers pass (float32 and float64 arrays, uint32
sizes). Prints the names of all the module's kernels and the low-occupancy warnings of a small launch, then one JSON line per kernel and dtype: the PTX's count of 64-bit integer divisions and
remainders and of float64 instructions, and whether the PTX assembled to machine code (nvJitLink).
Run by test_gpu_compile.py in a subprocess without the CUDA simulator (which the test session has on).
"""
import json
import os
import re
import sys

import numpy as np


def recorded_launches(gpu, dtype):
    """(kernel, args) of every launch the launchers make on small arrays of ``dtype``."""
    calls = []
    gpu._launch = lambda kernel, n, *args: calls.append((kernel, args))
    x = np.zeros((2, 3, 6, 5), dtype)
    cols = np.zeros((3 * 3 * 3, 2 * 6 * 5), dtype)
    gpu.im2col(x, 0, 0, 3, 3, 1, 1, 1, 1, 6, 5, cols)
    gpu.col2im(cols, 0, 0, 3, 3, 1, 1, 1, 1, 6, 5, x)
    y, b, out = np.zeros((4, 60), dtype), np.zeros(4, dtype), np.zeros((2, 4, 30), dtype)
    gpu.gemm_out_to_nchw(y, b, True, 0, 0, out)
    gpu.nchw_to_gemm(out, out, gpu.GUIDED, 0, 0, y)
    pooled, switches = np.zeros((2, 3, 3, 2), dtype), np.zeros((2, 3, 3, 2), np.int32)
    gpu.maxpool_forward(x, 3, 2, 2, 2, 1, 0, pooled, switches)
    gpu.maxpool_backward(pooled, switches, 3, 2, 2, 2, 1, 0, x)
    flat = x.ravel()
    gpu.relu_forward(flat, flat)
    gpu.relu_backward(flat, flat, gpu.DECONVNET, flat)
    return calls


def occupancy_warnings(gpu):
    """The "low occupancy" warnings that configuring a one-block launch gives: [with the filters in
    force after importing gpu_kernels, with no filters]."""
    import warnings
    counts = []
    for keep_filters, blocks in ((True, 1), (False, 2)):          # Numba keeps each configuration made
        with warnings.catch_warnings(record=True) as caught:
            if not keep_filters:
                warnings.resetwarnings()
            warnings.filterwarnings("always", append=True)
            gpu._relu_forward[blocks, gpu.THREADS]
        counts.append(sum("Grid size" in str(w.message) for w in caught))
    return counts


def assemble(ptx, cc):
    """Link the PTX into machine code for sm_<cc> with nvJitLink; None if nvJitLink is absent."""
    try:
        from cuda.bindings import nvjitlink
    except ImportError:
        return None
    handle = nvjitlink.create(2, [f"-arch=sm_{cc[0]}{cc[1]}".encode(), b"-O3"])
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
        nvjitlink.complete(handle)
        return nvjitlink.get_linked_cubin_size(handle)
    finally:
        nvjitlink.destroy(handle)


def main(argv):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
    from numba import cuda, typeof
    from minigrad.fast import gpu_kernels as gpu
    from numba.cuda.dispatcher import CUDADispatcher
    cc = tuple(int(v) for v in (argv[0] if argv else "9.0").split("."))
    print(json.dumps({"kernels": sorted(name for name, f in vars(gpu).items()
                                        if isinstance(f, CUDADispatcher) and not f.targetoptions["device"]),
                      "occupancy_warnings": occupancy_warnings(gpu)}))
    for dtype in (np.float32, np.float64):
        for kernel, args in recorded_launches(gpu, dtype):
            sig = tuple(typeof(a) for a in args)
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
            print(json.dumps({
                "kernel": kernel.py_func.__name__, "dtype": np.dtype(dtype).name, "cc": list(cc),
                "target": re.search(r"\.target\s+(\w+)", ptx).group(1),
                "int64_div": len(re.findall(r"\b(?:div|rem)\.[su]64\b", ptx)),
                "f64": len(re.findall(r"\.f64\b", ptx)),
                "cached": type(kernel._cache).__name__ != "NullCache",
                "cubin_bytes": assemble(ptx, cc)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
