"""The fast tier: the heavy ops of simple.py, computed the same way but faster (tested equal).

    conv.py          chunked im2col + GEMM, kept patch matrices, fused bias+ReLU, Winograd dispatch;
                     the plan constants (COLS_BUDGET, KEEP_COLS_LIMIT, WINOGRAD_MIN_CHANNELS, ...)
    pointwise.py     1x1 convolutions: a GEMM on the input, straight into blocks of the output, each
                     finished (scale, bias, residual, ReLU) while in cache
    relu.py          ReLU by compiled loops; fused into the convolution before it when it can be
    pool.py          max pooling (with padding) with switches by compiled loops; global average pooling
    batchnorm.py     batch normalisation; folded into the convolution before it for inference
    winograd.py      Winograd F(2x2, 3x3)
    memory.py        scratch buffers reused from call to call
    cpu_kernels.py   Numba @njit kernels;  gpu_kernels.py  numba.cuda kernels (same names, same maths)
    reference.py     naive loops: the ground truth the compiled kernels are tested against
"""
import numpy as np


def for_array(array):
    """The kernel module for an array's device: ``cpu_kernels`` for NumPy, ``gpu_kernels`` for CuPy."""
    if isinstance(array, np.ndarray):
        from . import cpu_kernels
        return cpu_kernels
    from . import gpu_kernels
    return gpu_kernels


from .conv import conv2d  # noqa: E402  (the tier's ops; they need for_array above)
from .pool import global_avg_pool2d, max_pool2d  # noqa: E402
from .relu import relu  # noqa: E402
from .batchnorm import batch_norm  # noqa: E402
