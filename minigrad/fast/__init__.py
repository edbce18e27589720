"""The fast tier: compiled kernels ``cpu_kernels`` (Numba @njit on NumPy arrays), ``gpu_kernels``
(numba.cuda on CuPy arrays), ``winograd`` (Winograd F(2x2, 3x3)), and ``reference`` (naive loops, the
ground truth the compiled kernels are tested against)."""
import numpy as np


def for_array(array):
    """The kernel module for an array's device: ``cpu_kernels`` for NumPy, ``gpu_kernels`` for CuPy."""
    if isinstance(array, np.ndarray):
        from . import cpu_kernels
        return cpu_kernels
    from . import gpu_kernels
    return gpu_kernels
