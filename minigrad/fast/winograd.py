"""Winograd F(2x2, 3x3) and F(4x4, 3x3) (Lavin & Gray 2015): a 3x3 stride-1 convolution with 2.25x
or 4x fewer multiplications.

Each m x m block of output (m = 2 or 4) comes from an n x n tile d of (zero-padded) input, n = m + 2:

    Y = A^T [ (G w G^T) * (B^T d B) ] A

where * is elementwise over the n*n positions of the transformed tile, and the products are summed
over input channels. Summing over channels at each of the n*n positions is a GEMM, so for T tiles:

    U (n*n, O, C) = G w G^T      the filters, once per call (``filters``)
    V (n*n, C, T) = B^T d B      the input tiles (winograd_kernels.py: input_2x2, input_4x4)
    M (n*n, O, T) = U @ V        n*n GEMMs over channels (BLAS)
    out = A^T M A + b            m x m per tile, bias and ReLU fused (winograd_kernels.py: output_2x2, output_4x4)

F(2x2, 3x3) (interpolation points 0, 1, -1 and infinity), with the 4x4, 4x3 and 2x4 matrices

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

makes the 36 multiplications of a 2x2 block and channel pair 16, and its transformed input is 4x the
input where im2col's patch matrix is 9x. F(4x4, 3x3) (points 0, 1, -1, 2, -2 and infinity), with
the 6x6, 6x3 and 4x6 matrices

    B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
    G   = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6],
           [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]]
    A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]

makes the 144 of a 4x4 block 36, and its transformed input is 2.25x the input. The price is the
transforms (F(4x4)'s are larger, with the constants 2 to 8, and its filters are 2.25 times as many
numbers, transformed at every call), and float32 error larger than im2col's, F(4x4)'s most: its
output transform weighs the GEMMs' rounding errors by up to 8 x 8. Measured against float64 at
256 -> 256 channels, 28x28, relative to the largest value (tests/minigrad/test_winograd.py), forward /
input gradient: im2col 5.0e-7 / 3.9e-7, F(2x2) 7.8e-7 / 5.9e-7, F(4x4) 1.2e-5 / 1.0e-5; F(4x4) on
VGG16's layer shapes (64 to 512 channels, 224x224 to 14x14, batch 1) 0.7e-5 to 1.3e-5 / 1.0e-5 to
1.6e-5, against the 1e-4 to which the PyTorch cross-checks hold float32.

The input gradient of such a convolution is the same convolution of the output gradient with the
filters turned by 180 degrees and the input and output channels swapped, with padding 2 - p: Winograd
again (``filters(w, flip=True)``). conv.py decides when to use which (``_winograd_block``).
"""
import math

import numpy as np

from . import parallel
from .memory import scratch

G2 = np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]])
G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])

#: the filter transform G ((m + 2) x 3) of F(m x m, 3x3), by output block size m
G = {2: G2, 4: G4}


def filters(w, flip=False, m=2, out=None):
    """U (n*n, O, C) = G w G^T for each (o, c) of w (O, C, 3, 3), G that of F(m x m, 3x3) (n = m + 2):
    U[n*a + b, o, c] = sum_ij G[a, i] G[b, j] w[o, c, i, j] (winograd_kernels.py: filter_transform),
    into ``out`` if given.

    With ``flip``, the filters turned by 180 degrees (the backward's): G's columns are reversed instead."""
    from .winograd_kernels import filter_transform
    O, C = w.shape[:2]
    g = G[m][:, ::-1] if flip else G[m]
    U = np.empty(((m + 2) ** 2, O, C), w.dtype) if out is None else out
    filter_transform(np.ascontiguousarray(w).reshape(O, C * 9), np.ascontiguousarray(g, w.dtype), U)
    return U


def conv(x, U, b, padding, relu, chunks, scale=None):
    """The 3x3 stride-1 convolution of x (N, C, H, W) with the transformed filters U (n*n, O, C) of
    F(m x m, 3x3) (the block size follows from U: m = n - 2), plus b (and the ReLU if ``relu``), a
    chunk of tiles at a time: ``chunks(k, th, tw)`` gives the chunks (n0, n1, ty0, ty1) of whole images
    or bands of tile rows whose arrays of k rows fit the budget.
    ``scale`` (O,): each output channel multiplied by it before the bias (a folded batch norm)."""
    from .winograd_kernels import serial                                  # one chunk per thread
    n = math.isqrt(len(U))
    m = n - 2
    transform_input, transform_output = {2: (serial.input_2x2, serial.output_2x2),
                                         4: (serial.input_4x4, serial.output_4x4)}[m]
    N, C, H, W = x.shape
    O = U.shape[1]
    ph, pw = padding
    oh, ow = H + 2 * ph - 2, W + 2 * pw - 2
    th, tw = -(-oh // m), -(-ow // m)                                      # tiles of m x m output
    out = np.empty((N, O, oh, ow), x.dtype)

    def chunk(n0, n1, ty0, ty1):
        T = (n1 - n0) * (ty1 - ty0) * tw                                   # tiles in this chunk
        V = scratch(np, "cols", (n * n, C, T), x.dtype)
        transform_input(x, n0, ty0, ph, pw, ty1 - ty0, tw, V)              # (n*n, C, T)
        M = np.matmul(U, V, out=scratch(np, "gemm", (n * n, O, T), x.dtype))  # n*n GEMMs: (O, C) @ (C, T)
        transform_output(M, b, relu, n0, ty0, ty1 - ty0, tw, out, scale)   # (N, O, oh, ow)
    parallel.for_each(lambda c: chunk(*c), chunks(n * n * max(C, O), th, tw))
    return out
