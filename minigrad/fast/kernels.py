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
