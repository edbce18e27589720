"""The fast tier: the heavy ops of simple.py, computed the same way but faster (tested equal).

    conv.py          chunked im2col + GEMM, kept patch matrices, fused scale+bias+residual+ReLU,
                     Winograd dispatch; the plan constants (COLS_BUDGET, KEEP_COLS_LIMIT, ...)
    by_channels.py   conv.py's work split between the threads by channels when the images are too few
    pointwise.py     1x1 convolutions: a GEMM on the input, straight into blocks of the output, each
                     finished (scale, bias, residual, ReLU) while in cache
    winograd.py      Winograd F(2x2, 3x3) and F(4x4, 3x3);  winograd_kernels.py  their Numba transforms
    linear.py        the fully connected layer's GEMMs split between the engine's threads
    relu.py          ReLU by compiled loops
    pool.py          max pooling (with padding) with switches by compiled loops; global average pooling
    batchnorm.py     batch normalisation in two passes
    parallel.py      the engine's own threads (whole chunks per thread), sized by ``resize``
    memory.py        scratch buffers reused from call to call;  plan.py  a GPU's chunk budget
    kernels.py       which kernels run on an array (the CPU's or the GPU's); the GPU kernels' check
    cpu_kernels.py   Numba @njit kernels;  gpu_kernels.py  numba.cuda kernels (same names, same maths)
    reference.py     naive loops: the ground truth the compiled kernels are tested against
    ops.py           the tier's ops, as tiers.py hands them out

ops.py holds the tier's ops under the names simple.py gives them; only minigrad/tiers.py imports it.
"""
