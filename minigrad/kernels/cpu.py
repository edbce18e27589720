"""Numba CPU kernels: the data movement around the convolution GEMM, max pooling with switches,
and ReLU with its three backward rules.

Each kernel states its maths as the loop it computes. All are compiled once
(``cache=True`` writes the machine code next to this file, so a second run starts fast) and
parallel over their outermost independent loop (``prange``), chosen so that no two threads ever
write the same element (no atomics needed).

Optimisations made:
- im2col writes each row ``(c, i, j)`` of the patch matrix contiguously, in the ``(C*kh*kw, oh*ow)``
  layout that ``W (O, C*kh*kw) @ cols`` wants, so the GEMM reads it without a copy or transpose;
- padding is handled by bounds checks, never by materialising a padded copy of the input;
- col2im parallelises over input channels, so its scatter-adds cannot race;
- pooling parallelises over (image, channel) planes, which also keeps overlapping windows race-free
  in the backward scatter;
- the bias add and the ReLU are fused into one pass over the convolution output
  (``bias_relu``) when a convolution is followed by a ReLU.
"""
import os

import numba
import numpy as np
from numba import njit, prange

# Threads: Numba's OpenMP layer leaves its threads spinning after each parallel loop, and they then
# fight OpenBLAS's threads for the cores during the GEMM that follows (measured on 2 cores: im2col
# plus GEMM took 15x longer than either alone). The workqueue layer's threads sleep when idle.
if not os.environ.get("NUMBA_THREADING_LAYER"):
    numba.config.THREADING_LAYER = "workqueue"

# Rule codes shared with relu_rules.py.
GRADIENT, DECONVNET, GUIDED = 0, 1, 2


@njit(cache=True, parallel=True)
def im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    """Patches of one image as columns.

    x (C, H, W) -> cols (C*kh*kw, oh*ow):
        cols[(c*kh + i)*kw + j, oy*ow + ox] = x[c, oy*sh + i - ph, ox*sw + j - pw]   (0 outside x)
    """
    C, H, W = x.shape
    for r in prange(C * kh * kw):
        c = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        for oy in range(oh):
            y = oy * sh + i - ph
            row = oy * ow
            if y < 0 or y >= H:
                for ox in range(ow):
                    cols[r, row + ox] = 0
                continue
            for ox in range(ow):
                xx = ox * sw + j - pw
                if 0 <= xx < W:
                    cols[r, row + ox] = x[c, y, xx]
                else:
                    cols[r, row + ox] = 0


@njit(cache=True, parallel=True)
def col2im(cols, kh, kw, sh, sw, ph, pw, oh, ow, dx):
    """The adjoint of im2col: scatter-add columns back onto one image.

    cols (C*kh*kw, oh*ow), dx (C, H, W):
        dx[c, oy*sh + i - ph, ox*sw + j - pw] += cols[(c*kh + i)*kw + j, oy*ow + ox]   (inside dx)
    """
    C, H, W = dx.shape
    for c in prange(C):
        for i in range(kh):
            for j in range(kw):
                r = (c * kh + i) * kw + j
                for oy in range(oh):
                    y = oy * sh + i - ph
                    if y < 0 or y >= H:
                        continue
                    for ox in range(ow):
                        xx = ox * sw + j - pw
                        if 0 <= xx < W:
                            dx[c, y, xx] += cols[r, oy * ow + ox]


@njit(cache=True, parallel=True)
def bias_relu(out, b, relu):
    """In place over a convolution output out (N, O, P): out += b[o], then max(., 0) if relu."""
    N, O, P = out.shape
    for no in prange(N * O):
        n = no // O
        o = no % O
        bo = b[o]
        for p in range(P):
            v = out[n, o, p] + bo
            if relu and v < 0:
                v = 0
            out[n, o, p] = v


@njit(cache=True, parallel=True)
def maxpool_forward(x, kh, kw, sh, sw, out, switches):
    """Max pooling that remembers where each maximum came from.

    x (N, C, H, W) -> out (N, C, oh, ow), switches (N, C, oh, ow) as flat indices y*W + x:
        out[n, c, oy, ox] = max_{i<kh, j<kw} x[n, c, oy*sh + i, ox*sw + j]   (first maximum on ties)
    """
    N, C, H, W = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for oy in range(oh):
            for ox in range(ow):
                y0 = oy * sh
                x0 = ox * sw
                best = x[n, c, y0, x0]
                arg = y0 * W + x0
                for i in range(kh):
                    for j in range(kw):
                        v = x[n, c, y0 + i, x0 + j]
                        if v > best:
                            best = v
                            arg = (y0 + i) * W + x0 + j
                out[n, c, oy, ox] = best
                switches[n, c, oy, ox] = arg


@njit(cache=True, parallel=True)
def maxpool_backward(grad_out, switches, dx):
    """Route each output gradient to its switch: dx[n, c, s // W, s % W] += g[n, c, oy, ox]."""
    N, C, H, W = dx.shape
    oh, ow = grad_out.shape[2], grad_out.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for oy in range(oh):
            for ox in range(ow):
                s = switches[n, c, oy, ox]
                dx[n, c, s // W, s % W] += grad_out[n, c, oy, ox]


@njit(cache=True, parallel=True)
def relu_forward(x, out):
    """out[k] = max(x[k], 0) over flat arrays."""
    for k in prange(x.size):
        v = x[k]
        out[k] = v if v > 0 else 0


@njit(cache=True, parallel=True)
def relu_backward(y, g, rule, dx):
    """The three ReLU backward rules over flat arrays (y = relu(x), so [y > 0] = [x > 0]):

        GRADIENT:  dx = g * [x > 0]
        DECONVNET: dx = g * [g > 0]
        GUIDED:    dx = g * [g > 0] * [x > 0]
    """
    for k in prange(g.size):
        v = g[k]
        keep = True
        if rule != DECONVNET and not y[k] > 0:
            keep = False
        if rule != GRADIENT and not v > 0:
            keep = False
        dx[k] = v if keep else 0
