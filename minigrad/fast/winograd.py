"""Winograd F(2x2, 3x3) (Lavin & Gray 2015): a 3x3 stride-1 convolution with 2.25x fewer multiplications.

Each 2x2 block of output comes from a 4x4 tile d of (zero-padded) input:

    Y = A^T [ (G w G^T) * (B^T d B) ] A

where * is elementwise over the 16 positions of the transformed tile, and the products are summed over
input channels. Summing over channels at each of the 16 positions is a GEMM, so for T tiles:

    U (16, O, C) = G w G^T       the filters, once per call (``filters``)
    V (16, C, T) = B^T d B       the input tiles (cpu_kernels.py: winograd_input)
    M (16, O, T) = U @ V         16 GEMMs over channels (BLAS)
    out = A^T M A + b            2x2 per tile, bias and ReLU fused (cpu_kernels.py: winograd_output)

with the 4x4 and 4x3 matrices

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

36 multiplications per tile and channel pair become 16, and the transformed input is 4x the input
where im2col's patch matrix is 9x. The price is the transforms, and float32 error about 1.5 times
im2col's (7.0e-7 against 4.8e-7 of the largest output at 256 channels; tests/minigrad/test_winograd.py).

The input gradient of such a convolution is the same convolution of the output gradient with the
filters turned by 180 degrees and the input and output channels swapped, with padding 2 - p: Winograd
again (``filters(w, flip=True)``). conv.py decides when to use it (``WINOGRAD_MIN_CHANNELS``).
"""
import numpy as np

from . import parallel
from .kernels import for_one_thread
from .memory import scratch

G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def filters(w, flip=False):
    """U (16, O, C) = G w G^T for each (o, c), as one GEMM: U[4a + b] = sum_ij G[a, i] G[b, j] w[:, :, i, j].

    With ``flip``, the filters turned by 180 degrees (the backward's): G's columns are reversed instead."""
    O, C = w.shape[:2]
    g = G[:, ::-1] if flip else G
    GG = np.kron(g, g).astype(w.dtype)                                    # (16, 9): [4a + b, 3i + j]
    return parallel.matmul(GG, np.ascontiguousarray(w).reshape(O * C, 9).T).reshape(16, O, C)


def conv(x, U, b, padding, relu, chunks, scale=None):
    """The 3x3 stride-1 convolution of x (N, C, H, W) with the transformed filters U (16, O, C), plus b
    (and the ReLU if ``relu``), a chunk of tiles at a time: ``chunks(k, th, tw)`` gives the chunks
    (n0, n1, ty0, ty1) of whole images or bands of tile rows whose arrays of k rows fit the budget.
    ``scale`` (O,): each output channel multiplied by it before the bias (a folded batch norm)."""
    kernels = for_one_thread(x)                                            # one chunk per thread
    N, C, H, W = x.shape
    O = U.shape[1]
    ph, pw = padding
    oh, ow = H + 2 * ph - 2, W + 2 * pw - 2
    th, tw = (oh + 1) // 2, (ow + 1) // 2                                  # tiles of 2x2 output
    out = np.empty((N, O, oh, ow), x.dtype)

    def chunk(n0, n1, ty0, ty1):
        T = (n1 - n0) * (ty1 - ty0) * tw                                   # tiles in this chunk
        V = scratch(np, "cols", (16, C, T), x.dtype)
        kernels.winograd_input(x, n0, ty0, ph, pw, ty1 - ty0, tw, V)            # (16, C, T)
        M = np.matmul(U, V, out=scratch(np, "gemm", (16, O, T), x.dtype))  # 16 GEMMs: (O, C) @ (C, T)
        kernels.winograd_output(M, b, relu, n0, ty0, ty1 - ty0, tw, out, scale)  # (N, O, oh, ow)
    parallel.for_each(lambda c: chunk(*c), chunks(16 * max(C, O), th, tw))
    return out
