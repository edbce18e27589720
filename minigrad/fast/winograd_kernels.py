"""Numba CPU kernels of Winograd's transforms (the maths is in winograd.py): a 3x3 stride-1
convolution computes each m x m block of output from an n x n tile of input, n = m + 2, as

    V = B^T d B (input tile)    U = G w G^T (filter)    M = U * V (n*n GEMMs over channels)    Y = A^T M A

for F(2x2, 3x3) (m = 2, n = 4: ``input_2x2``, ``output_2x2``) and F(4x4, 3x3) (m = 4, n = 6:
``input_4x4``, ``output_4x4``), with one filter transform for both (``filter_transform``).

The tile transforms work a row of tiles at a time, as whole vectors: the input transform combines
the tiles' n input rows (B^T, as whole rows padded with zeros), then the n columns of every tile at
once (B); the output transform combines the n rows of M of every tile (A^T), then the columns (A).
Inner loops over 1-D views vectorise (cpu_kernels.py). Each is parallel over (image, channel) pairs,
which write disjoint parts of V and of the output.

The constants 2, 4, 5 and 8 of F(4x4) are float32 scalars (``TWO`` ...): Numba computes an integer
literal times a float32 in float64, which does not vectorise as widely; a float32 scalar keeps float32
arrays in float32, and float64 arrays in float64 (the constants are exact in both). The output
transforms' ``1`` (no scale) and the ReLU's ``0`` are integers: a float32 block is clamped in float64
(exactly), and with a scale (a folded batch norm) it is scaled and biased in float64 and rounded once
to float32 (tests/minigrad/test_winograd.py checks only the input transforms for float64).
"""
import types

import numpy as np
from numba import njit, prange

from .cpu_kernels import _serial

TWO, FOUR, FIVE, EIGHT = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


@njit(cache=True, parallel=True)
def filter_transform(w, g, U):
    """The filter transform of either size: U (n*n, O, C) = g w g^T for each (o, c), g (n, 3):
        U[n*a + b, o, c] = sum_j (sum_i g[a, i] w[o, c, i, j]) g[b, j]
    with w (O, C*9) the filters (O, C, 3, 3) flattened. Parallel over o; each o's 3x3 taps are first
    gathered into rows (wr[3*i + j, c] = w[o, c, i, j]) so that the loops over c vectorise.
    """
    O, C, n = w.shape[0], w.shape[1] // 9, g.shape[0]
    for o in prange(O):
        wo = w[o]
        wr = np.empty((9, C), w.dtype)
        t = np.empty((n, 3, C), w.dtype)                   # t[a, j] = (g w)[a, j] for every c
        for k in range(9):
            dst = wr[k]
            for c in range(C):
                dst[c] = wo[9 * c + k]
        for a in range(n):
            for j in range(3):
                dst = t[a, j]
                w0, w1, w2 = wr[j], wr[3 + j], wr[6 + j]
                for c in range(C):
                    dst[c] = g[a, 0] * w0[c] + g[a, 1] * w1[c] + g[a, 2] * w2[c]
        for a in range(n):
            t0, t1, t2 = t[a, 0], t[a, 1], t[a, 2]
            for b in range(n):
                dst = U[n * a + b, o]
                for c in range(C):
                    dst[c] = t0[c] * g[b, 0] + t1[c] * g[b, 1] + t2[c] * g[b, 2]


@njit(cache=True, nogil=True)
def _tile_rows(plane, y0, pw, lo, hi, r):
    """The input rows y0 .. y0 + len(r) - 1 of a row of tiles into r, shifted by the padding pw: r[a, k] =
    plane[y0 + a, k - pw] for the columns lo .. hi - 1 that lie inside the plane, 0 for rows outside it
    (r's other columns, the padding, stay 0)."""
    H = plane.shape[0]
    for a in range(r.shape[0]):
        ra = r[a]
        if 0 <= y0 + a < H:
            src = plane[y0 + a]
            for k in range(lo, hi):
                ra[k] = src[k - pw]
        else:
            ra[lo:hi] = 0


# ------------------------------------------------------------------------------------------------
# F(2x2, 3x3): 4x4 tiles, 2x2 blocks of output
# ------------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def input_2x2(x, n0, ty0, ph, pw, th, tw, V):
    """The input transform of the 4x4 tiles of images n0 .. n0 + nb - 1, tile rows ty0 .. ty0 + th - 1.

    x (N, C, H, W) -> V (16, C, nb*th*tw), with d the tile whose top-left input pixel is
    (2*(ty0 + ty) - ph, 2*tx - pw) (0 outside x) and T = n*th*tw + ty*tw + tx:
        V[4*a + b, c, T] = (B^T d B)[a, b],   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    """
    C, W = x.shape[1], x.shape[3]
    nb = V.shape[2] // (th * tw)
    Wp = 2 * tw + 2                                         # the padded row that the tiles cover
    for nc in prange(nb * C):
        n = nc // C
        c = nc % C
        plane = x[n0 + n, c]
        r = np.zeros((4, Wp), x.dtype)                      # the four input rows of a row of tiles
        t = np.empty((4, Wp), x.dtype)                      # B^T applied to them
        lo = min(Wp, pw)                                    # the columns of r that lie inside x
        hi = max(lo, min(Wp, W + pw))
        for ty in range(th):
            _tile_rows(plane, 2 * (ty0 + ty) - ph, pw, lo, hi, r)
            for k in range(Wp):
                t[0, k] = r[0, k] - r[2, k]
                t[1, k] = r[1, k] + r[2, k]
                t[2, k] = r[2, k] - r[1, k]
                t[3, k] = r[1, k] - r[3, k]
            T0 = (n * th + ty) * tw
            for a in range(4):
                ta = t[a]
                v0 = V[4 * a + 0, c, T0:T0 + tw]
                v1 = V[4 * a + 1, c, T0:T0 + tw]
                v2 = V[4 * a + 2, c, T0:T0 + tw]
                v3 = V[4 * a + 3, c, T0:T0 + tw]
                for tx in range(tw):
                    k = 2 * tx
                    v0[tx] = ta[k] - ta[k + 2]
                    v1[tx] = ta[k + 1] + ta[k + 2]
                    v2[tx] = ta[k + 2] - ta[k + 1]
                    v3[tx] = ta[k + 1] - ta[k + 3]


@njit(cache=True, parallel=True)
def output_2x2(M, b, relu, n0, ty0, th, tw, out, scale=None):
    """The output transform: each tile's 2x2 block, plus the bias (and the ReLU), into out.

    M (16, O, nb*th*tw) -> out (N, O, oh, ow), blocks beyond oh or ow dropped:
        out[n0 + n, o, 2*(ty0 + ty) + i, 2*tx + j] = (A^T m A)[i, j] + b[o],   A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
    with m[a, b'] = M[4*a + b', o, n*th*tw + ty*tw + tx].
    With ``scale`` (O,) (a folded batch norm) the block is scale[o] * (A^T m A) + b[o].
    """
    O, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    nb = M.shape[2] // (th * tw)
    for no in prange(nb * O):
        n = no // O
        o = no % O
        bo = b[o]
        so = scale[o] if scale is not None else 1
        dst = out[n0 + n, o]
        s = np.empty((2, 4, tw), M.dtype)                   # s = A^T m for a row of tiles
        row = np.empty(2 * tw, M.dtype)                     # one output row of the tiles, before cropping
        for ty in range(th):
            T0 = (n * th + ty) * tw
            for k in range(4):
                m0 = M[k, o, T0:T0 + tw]
                m1 = M[4 + k, o, T0:T0 + tw]
                m2 = M[8 + k, o, T0:T0 + tw]
                m3 = M[12 + k, o, T0:T0 + tw]
                for tx in range(tw):
                    s[0, k, tx] = m0[tx] + m1[tx] + m2[tx]
                    s[1, k, tx] = m1[tx] - m2[tx] - m3[tx]
            for i in range(2):
                y = 2 * (ty0 + ty) + i
                if y >= oh:
                    continue
                si = s[i]
                for tx in range(tw):
                    if scale is not None:
                        v0 = (si[0, tx] + si[1, tx] + si[2, tx]) * so + bo
                        v1 = (si[1, tx] - si[2, tx] - si[3, tx]) * so + bo
                    else:
                        v0 = si[0, tx] + si[1, tx] + si[2, tx] + bo
                        v1 = si[1, tx] - si[2, tx] - si[3, tx] + bo
                    if relu:
                        v0 = v0 if v0 > 0 else 0
                        v1 = v1 if v1 > 0 else 0
                    row[2 * tx] = v0
                    row[2 * tx + 1] = v1
                d = dst[y]
                for k in range(ow):
                    d[k] = row[k]


# ------------------------------------------------------------------------------------------------
# F(4x4, 3x3): 6x6 tiles, 4x4 blocks of output
# ------------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def input_4x4(x, n0, ty0, ph, pw, th, tw, V):
    """The input transform of the 6x6 tiles of images n0 .. n0 + nb - 1, tile rows ty0 .. ty0 + th - 1.

    x (N, C, H, W) -> V (36, C, nb*th*tw), with d the tile whose top-left input pixel is
    (4*(ty0 + ty) - ph, 4*tx - pw) (0 outside x) and T = n*th*tw + ty*tw + tx:
        V[6*a + b, c, T] = (B^T d B)[a, b],   B^T = [[4,  0, -5,  0, 1, 0],
                                                     [0, -4, -4,  1, 1, 0],
                                                     [0,  4, -4, -1, 1, 0],
                                                     [0, -2, -1,  2, 1, 0],
                                                     [0,  2, -1, -2, 1, 0],
                                                     [0,  4,  0, -5, 0, 1]]
    """
    C, W = x.shape[1], x.shape[3]
    nb = V.shape[2] // (th * tw)
    Wp = 4 * tw + 2                                         # the padded row that the tiles cover
    for nc in prange(nb * C):
        n = nc // C
        c = nc % C
        plane = x[n0 + n, c]
        r = np.zeros((6, Wp), x.dtype)                      # the six input rows of a row of tiles
        t = np.empty((6, Wp), x.dtype)                      # B^T applied to them
        lo = min(Wp, pw)                                    # the columns of r that lie inside x
        hi = max(lo, min(Wp, W + pw))
        for ty in range(th):
            _tile_rows(plane, 4 * (ty0 + ty) - ph, pw, lo, hi, r)
            r0, r1, r2, r3, r4, r5 = r[0], r[1], r[2], r[3], r[4], r[5]
            for k in range(Wp):
                t[0, k] = FOUR * r0[k] - FIVE * r2[k] + r4[k]
                t[1, k] = r3[k] + r4[k] - FOUR * (r1[k] + r2[k])
                t[2, k] = r4[k] - r3[k] + FOUR * (r1[k] - r2[k])
                t[3, k] = r4[k] - r2[k] + TWO * (r3[k] - r1[k])
                t[4, k] = r4[k] - r2[k] + TWO * (r1[k] - r3[k])
                t[5, k] = FOUR * r1[k] - FIVE * r3[k] + r5[k]
            T0 = (n * th + ty) * tw
            for a in range(6):
                ta = t[a]
                v0 = V[6 * a + 0, c, T0:T0 + tw]
                v1 = V[6 * a + 1, c, T0:T0 + tw]
                v2 = V[6 * a + 2, c, T0:T0 + tw]
                v3 = V[6 * a + 3, c, T0:T0 + tw]
                v4 = V[6 * a + 4, c, T0:T0 + tw]
                v5 = V[6 * a + 5, c, T0:T0 + tw]
                for tx in range(tw):
                    k = 4 * tx
                    v0[tx] = FOUR * ta[k] - FIVE * ta[k + 2] + ta[k + 4]
                    v1[tx] = ta[k + 3] + ta[k + 4] - FOUR * (ta[k + 1] + ta[k + 2])
                    v2[tx] = ta[k + 4] - ta[k + 3] + FOUR * (ta[k + 1] - ta[k + 2])
                    v3[tx] = ta[k + 4] - ta[k + 2] + TWO * (ta[k + 3] - ta[k + 1])
                    v4[tx] = ta[k + 4] - ta[k + 2] + TWO * (ta[k + 1] - ta[k + 3])
                    v5[tx] = FOUR * ta[k + 1] - FIVE * ta[k + 3] + ta[k + 5]


@njit(cache=True, parallel=True)
def output_4x4(M, b, relu, n0, ty0, th, tw, out, scale=None):
    """The output transform: each tile's 4x4 block, plus the bias (and the ReLU), into out.

    M (36, O, nb*th*tw) -> out (N, O, oh, ow), blocks beyond oh or ow dropped:
        out[n0 + n, o, 4*(ty0 + ty) + i, 4*tx + j] = (A^T m A)[i, j] + b[o],   A^T = [[1, 1,  1, 1,  1, 0],
                                                                                      [0, 1, -1, 2, -2, 0],
                                                                                      [0, 1,  1, 4,  4, 0],
                                                                                      [0, 1, -1, 8, -8, 1]]
    with m[a, b'] = M[6*a + b', o, n*th*tw + ty*tw + tx].
    With ``scale`` (O,) (a folded batch norm) the block is scale[o] * (A^T m A) + b[o].
    """
    O, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    nb = M.shape[2] // (th * tw)
    for no in prange(nb * O):
        n = no // O
        o = no % O
        bo = b[o]
        so = scale[o] if scale is not None else 1
        dst = out[n0 + n, o]
        s = np.empty((4, 6, tw), M.dtype)                   # s = A^T m for a row of tiles
        row = np.empty(4 * tw, M.dtype)                     # one output row of the tiles, before cropping
        for ty in range(th):
            T0 = (n * th + ty) * tw
            for k in range(6):
                m0 = M[k, o, T0:T0 + tw]
                m1 = M[6 + k, o, T0:T0 + tw]
                m2 = M[12 + k, o, T0:T0 + tw]
                m3 = M[18 + k, o, T0:T0 + tw]
                m4 = M[24 + k, o, T0:T0 + tw]
                m5 = M[30 + k, o, T0:T0 + tw]
                for tx in range(tw):
                    plus12, minus12 = m1[tx] + m2[tx], m1[tx] - m2[tx]
                    plus34, minus34 = m3[tx] + m4[tx], m3[tx] - m4[tx]
                    s[0, k, tx] = m0[tx] + plus12 + plus34
                    s[1, k, tx] = minus12 + TWO * minus34
                    s[2, k, tx] = plus12 + FOUR * plus34
                    s[3, k, tx] = minus12 + EIGHT * minus34 + m5[tx]
            for i in range(4):
                y = 4 * (ty0 + ty) + i
                if y >= oh:
                    continue
                si = s[i]
                for tx in range(tw):
                    plus12, minus12 = si[1, tx] + si[2, tx], si[1, tx] - si[2, tx]
                    plus34, minus34 = si[3, tx] + si[4, tx], si[3, tx] - si[4, tx]
                    v0 = si[0, tx] + plus12 + plus34
                    v1 = minus12 + TWO * minus34
                    v2 = plus12 + FOUR * plus34
                    v3 = minus12 + EIGHT * minus34 + si[5, tx]
                    if scale is not None:
                        v0, v1, v2, v3 = v0 * so, v1 * so, v2 * so, v3 * so
                    v0, v1, v2, v3 = v0 + bo, v1 + bo, v2 + bo, v3 + bo
                    if relu:
                        v0 = v0 if v0 > 0 else 0
                        v1 = v1 if v1 > 0 else 0
                        v2 = v2 if v2 > 0 else 0
                        v3 = v3 if v3 > 0 else 0
                    row[4 * tx] = v0
                    row[4 * tx + 1] = v1
                    row[4 * tx + 2] = v2
                    row[4 * tx + 3] = v3
                d = dst[y]
                for k in range(ow):
                    d[k] = row[k]


# ------------------------------------------------------------------------------------------------
# The transforms of the tiles again, compiled without Numba's threads and without holding the GIL
# (cpu_kernels.py: _serial): each of the engine's own threads runs them on a chunk of its own
# (parallel.py). The filter transform runs once per call, on Numba's threads.
# ------------------------------------------------------------------------------------------------
serial = types.SimpleNamespace(**{k.py_func.__name__: _serial(k) for k in (
    input_2x2, output_2x2, input_4x4, output_4x4)})
