"""Which compiled kernels run on an array: the CPU's (Numba, cpu_kernels.py) or the GPU's (numba.cuda,
gpu_kernels.py); same names, same maths."""
import numpy as np


def for_array(array):
    """The kernel module for an array's device: ``cpu_kernels`` for NumPy, ``gpu_kernels`` for CuPy."""
    if isinstance(array, np.ndarray):
        from . import cpu_kernels
        return cpu_kernels
    from . import gpu_kernels
    return gpu_kernels


def for_one_thread(array):
    """The kernels that one of the engine's threads runs on one chunk (parallel.py): ``cpu_kernels.serial``
    (compiled without Numba's threads and without holding the GIL) for NumPy arrays, ``gpu_kernels`` for
    CuPy's."""
    if isinstance(array, np.ndarray):
        from . import cpu_kernels
        return cpu_kernels.serial
    return for_array(array)


_gpu_problem = None   # "" once the probe passed, the reason once it failed


def gpu_problem():
    """Why the GPU kernels cannot run here, in one line; None when they can: one of them (relu_forward)
    compiled and run on a CuPy array (numba-cuda, NVVM). Checked once per process, after CuPy itself
    (backend.gpu_problem)."""
    global _gpu_problem
    if _gpu_problem is None:
        _gpu_problem = _probe() or ""
    return _gpu_problem or None


def _probe():
    from ..backend import one_line
    try:
        import cupy
        from . import gpu_kernels
        x = cupy.asarray(np.array([-1, 2, -3, 4], np.float32))
        out = cupy.empty_like(x)
        gpu_kernels.relu_forward(x, out)
        out = cupy.asnumpy(out)
    except Exception as e:                                          # numba-cuda missing, NVVM missing, ...
        return f"a numba.cuda kernel failed to compile or run ({one_line(e)})"
    if not np.array_equal(out, [0, 2, 0, 4]):
        return f"a numba.cuda kernel gave wrong numbers: {out.tolist()} instead of [0, 2, 0, 4]"
    return None
