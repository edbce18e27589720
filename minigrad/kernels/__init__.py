"""Compiled kernels: ``cpu`` (Numba @njit on NumPy arrays), ``gpu`` (numba.cuda on CuPy arrays) and
``reference`` (naive loops, the ground truth the fast ones are tested against)."""
import numpy as np


def for_array(array):
    """The kernel module for an array's device: ``cpu`` for NumPy, ``gpu`` for CuPy."""
    if isinstance(array, np.ndarray):
        from . import cpu
        return cpu
    from . import gpu
    return gpu
