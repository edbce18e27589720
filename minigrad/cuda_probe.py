"""One numba.cuda kernel, compiled when the GPU check (backend.gpu_problem) first runs: it proves the
toolchain that the fast tier's GPU kernels need (numba-cuda, NVVM) without loading the fast tier."""
from numba import cuda


@cuda.jit
def _double(a):
    i = cuda.grid(1)
    if i < a.size:
        a[i] *= 2


def doubled(x):
    """x *= 2 in place, on the GPU (x a CuPy array of at most 32 elements)."""
    _double[1, 32](x)
    cuda.synchronize()
