"""Numba CPU kernels: the data movement around the convolution GEMM, max pooling with switches,
and ReLU with its three backward rules.

Each kernel states its maths as the loop it computes. All are compiled once
(``cache=True`` writes the machine code next to this file, so a second run starts fast) and
parallel over their outermost independent loop (``prange``), chosen so that no two threads ever
write the same element (no atomics needed).

Optimisations made:
- im2col writes each row ``(c, i, j)`` of the patch matrix contiguously, in the ``(C*kh*kw, nb*oh*ow)``
  layout that ``W (O, C*kh*kw) @ cols`` wants, for a chunk of nb images at once (one large GEMM
  instead of nb thin ones; the chunk is sized to bound the memory of ``cols``);
- padding is handled by bounds checks, never by materialising a padded copy of the input;
- col2im parallelises over (image, channel) pairs, so its scatter-adds cannot race;
- pooling parallelises over (image, channel) planes, which also keeps overlapping windows race-free
  in the backward scatter;
- the bias add and the ReLU are fused into the pass that unpacks the GEMM result into (N, O, P)
  (``gemm_out_to_nchw``), which also runs in place when a one-image GEMM wrote straight into the output;
  on the way back, the ReLU's backward rule is fused into the pass that packs the gradient for the
  GEMMs (``nchw_to_gemm``);
- inner loops run over 1-D views (a row of a plane, a row of a matrix), which LLVM vectorises;
  indexing 3-D or 4-D arrays element by element in them was 2 to 3 times slower.

Winograd's transforms, written the same way, are in winograd_kernels.py.
"""
import os
import types

import numba
from numba import njit, prange

from ..relu_rules import code

# Threads: Numba's OpenMP layer leaves its threads spinning after each parallel loop, and they then
# fight OpenBLAS's threads for the cores during the GEMM that follows (measured on 2 cores: im2col
# plus GEMM took 15x longer than either alone). The workqueue layer's threads sleep when idle.
if not os.environ.get("NUMBA_THREADING_LAYER"):
    numba.config.THREADING_LAYER = "workqueue"

# Rule codes from relu_rules (the one list of rules), frozen into the compiled code; NO_RELU for a
# convolution without a fused ReLU. (The cache is keyed on this file: after reordering
# relu_rules.RULES, delete minigrad/fast/__pycache__.)
GRADIENT, DECONVNET, GUIDED = (code(name) for name in ("gradient", "deconvnet", "guided"))
NO_RELU = -1


@njit(cache=True, parallel=True)
def im2col(x, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    """Patches of images n0 .. n0 + nb - 1, output rows oy0 .. oy0 + oh - 1, as columns side by side.

    x (N, C, H, W) -> cols (C*kh*kw, nb*oh*ow), with P = oh*ow (oh: the rows of this chunk):
        cols[(c*kh + i)*kw + j, n*P + oy*ow + ox] = x[n0 + n, c, (oy0 + oy)*sh + i - ph, ox*sw + j - pw]
    (0 outside x). A chunk is either whole images (oy0 = 0, oh = all rows) or rows of one image.
    """
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    P = oh * ow
    nb = cols.shape[1] // P
    for r in prange(C * kh * kw):
        c = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        # ox in [lo, hi) reads inside the row (0 <= ox*sw + j - pw < W): no bounds test in the copy loop
        lo = min(ow, max(0, (pw - j + sw - 1) // sw))
        hi = max(lo, min(ow, (W - 1 + pw - j) // sw + 1))
        for n in range(nb):
            for oy in range(oh):
                y = (oy0 + oy) * sh + i - ph
                row = n * P + oy * ow
                if y < 0 or y >= H:
                    cols[r, row:row + ow] = 0
                    continue
                cols[r, row:row + lo] = 0
                if sw == 1:                                    # a contiguous copy (vectorised)
                    dst = cols[r, row + lo:row + hi]
                    src = x[n0 + n, c, y, lo + j - pw:hi + j - pw]
                    for k in range(hi - lo):
                        dst[k] = src[k]
                else:
                    for ox in range(lo, hi):
                        cols[r, row + ox] = x[n0 + n, c, y, ox * sw + j - pw]
                cols[r, row + hi:row + ow] = 0


@njit(cache=True, parallel=True)
def col2im(cols, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, dx):
    """The adjoint of im2col: scatter-add the columns of a chunk back onto dx.

    cols (C*kh*kw, nb*oh*ow), dx (N, C, H, W):
        dx[n0 + n, c, (oy0 + oy)*sh + i - ph, ox*sw + j - pw] += cols[(c*kh + i)*kw + j, n*P + oy*ow + ox]
    Parallel over (image, channel) pairs, which own disjoint parts of dx.
    """
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    P = oh * ow
    nb = cols.shape[1] // P
    for nc in prange(nb * C):
        n = nc // C
        c = nc % C
        for i in range(kh):
            for j in range(kw):
                r = (c * kh + i) * kw + j
                lo = min(ow, max(0, (pw - j + sw - 1) // sw))     # the ox that land inside the row
                hi = max(lo, min(ow, (W - 1 + pw - j) // sw + 1))
                for oy in range(oh):
                    y = (oy0 + oy) * sh + i - ph
                    if y < 0 or y >= H:
                        continue
                    row = n * P + oy * ow
                    if sw == 1:                                # contiguous on both sides (vectorised)
                        dst = dx[n0 + n, c, y, lo + j - pw:hi + j - pw]
                        src = cols[r, row + lo:row + hi]
                        for k in range(hi - lo):
                            dst[k] += src[k]
                    else:
                        for ox in range(lo, hi):
                            dx[n0 + n, c, y, ox * sw + j - pw] += cols[r, row + ox]


@njit(cache=True, parallel=True)
def gemm_out_to_nchw(y, b, relu, n0, p0, out, scale=None, residual=None):
    """Unpack a GEMM result into the output, adding the bias and (if relu) clamping at 0.

    y (O, nb*Pc) -> out (N, O, P), with Pc = min(P, y's width) (whole images, or part of one):
        out[n0 + n, o, p0 + p] = max(y[o, n*Pc + p] + b[o], 0 if relu else -inf)
    With ``scale`` (O,) (a batch norm folded in: ``F.conv2d``'s ``scale``) y[o, .] is multiplied by scale[o]
    first; with ``residual`` (shaped like out) residual[n0 + n, o, p0 + p] is added before the ReLU
    (a residual block's shortcut: ``F.conv2d``'s ``residual``). y may be out's own block (in place).
    """
    O, P = out.shape[1], out.shape[2]
    Pc = min(P, y.shape[1])
    nb = y.shape[1] // Pc
    for no in prange(nb * O):
        n = no // O
        o = no % O
        bo = b[o]
        src = y[o, n * Pc:(n + 1) * Pc]                    # 1-D views: the loops vectorise
        dst = out[n0 + n, o, p0:p0 + Pc]
        if scale is not None:
            so = scale[o]
            if residual is not None:
                r = residual[n0 + n, o, p0:p0 + Pc]
                for p in range(Pc):
                    dst[p] = src[p] * so + bo + r[p]
            else:
                for p in range(Pc):
                    dst[p] = src[p] * so + bo
            if relu:
                for p in range(Pc):
                    dst[p] = dst[p] if dst[p] > 0 else 0
        elif residual is not None:
            r = residual[n0 + n, o, p0:p0 + Pc]
            for p in range(Pc):
                dst[p] = src[p] + bo + r[p]
            if relu:
                for p in range(Pc):
                    dst[p] = dst[p] if dst[p] > 0 else 0
        elif relu:
            for p in range(Pc):
                v = src[p] + bo
                dst[p] = v if v > 0 else 0
        else:
            for p in range(Pc):
                dst[p] = src[p] + bo


@njit(cache=True)
def _relu_passes(v, y_positive, rule):
    """Whether the ReLU backward rule (relu_rules.py) lets v, the gradient arriving from above, through."""
    if rule != DECONVNET and not y_positive:
        return False
    if rule != GRADIENT and not v > 0:
        return False
    return True


@njit(cache=True, parallel=True)
def nchw_to_gemm(g, y, rule, n0, p0, out):
    """The reverse packing, back through the conv's fused ReLU on the way (rule NO_RELU: none).

    g, y (N, O, P) -> out (O, nb*Pc), with Pc = min(P, out's width) (whole images, or part of one):
        out[o, n*Pc + p] = rule(g[n0 + n, o, p0 + p], [y[n0 + n, o, p0 + p] > 0])
    where y is the ReLU's output and rule is GRADIENT, DECONVNET or GUIDED (relu_backward's formulas).
    """
    O, P = g.shape[1], g.shape[2]
    Pc = min(P, out.shape[1])
    nb = out.shape[1] // Pc
    for no in prange(nb * O):
        n = no // O
        o = no % O
        src = g[n0 + n, o, p0:p0 + Pc]                     # 1-D views: the loops vectorise
        dst = out[o, n * Pc:(n + 1) * Pc]
        if rule == NO_RELU:
            for p in range(Pc):
                dst[p] = src[p]
        else:
            y_src = y[n0 + n, o, p0:p0 + Pc]
            for p in range(Pc):
                dst[p] = src[p] if _relu_passes(src[p], y_src[p] > 0, rule) else 0


@njit(cache=True, parallel=True)
def maxpool_forward(x, kh, kw, sh, sw, ph, pw, out, switches):
    """Max pooling that remembers where each maximum came from.

    x (N, C, H, W) -> out (N, C, oh, ow), switches (N, C, oh, ow) as flat indices y*W + x:
        out[n, c, oy, ox] = max_{i<kh, j<kw} x[n, c, oy*sh + i - ph, ox*sw + j - pw]   (first maximum on ties)
    over the cells of the window inside x: padding never wins (PyTorch pads with -inf). Each window
    holds at least one cell of x when ph < kh and pw < kw (functional.max_pool2d asks ph <= kh // 2).
    """
    N, C, H, W = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for nc in prange(N * C):
        plane = x[nc // C, nc % C]                          # 2-D views of one (image, channel) plane
        out_plane = out[nc // C, nc % C]
        switch_plane = switches[nc // C, nc % C]
        if kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0:
            _maxpool_2x2(plane, out_plane, switch_plane)
            continue
        for oy in range(oh):
            y0 = max(oy * sh - ph, 0)                       # the window's rows inside x: y0 .. y1 - 1
            y1 = min(oy * sh - ph + kh, H)
            for ox in range(ow):
                x0 = max(ox * sw - pw, 0)
                x1 = min(ox * sw - pw + kw, W)
                best = plane[y0, x0]
                arg = y0 * W + x0
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        v = plane[y, xx]
                        if v > best:
                            best = v
                            arg = y * W + xx
                out_plane[oy, ox] = best
                switch_plane[oy, ox] = arg


@njit(cache=True)
def _maxpool_2x2(plane, out_plane, switch_plane):
    """maxpool_forward's loop for 2x2 windows, stride 2, no padding (VGG's pools), on one plane: the
    four cells of each window compared in the same order (first maximum on ties), without the
    general loop's window bounds."""
    W = plane.shape[1]
    for oy in range(out_plane.shape[0]):
        top, bottom = plane[2 * oy], plane[2 * oy + 1]
        out_row, switch_row = out_plane[oy], switch_plane[oy]
        for ox in range(out_plane.shape[1]):
            best, arg = top[2 * ox], 0
            if top[2 * ox + 1] > best:
                best, arg = top[2 * ox + 1], 1
            if bottom[2 * ox] > best:
                best, arg = bottom[2 * ox], W
            if bottom[2 * ox + 1] > best:
                best, arg = bottom[2 * ox + 1], W + 1
            out_row[ox] = best
            switch_row[ox] = 2 * oy * W + 2 * ox + arg


@njit(cache=True, parallel=True)
def maxpool_backward(grad_out, switches, kh, kw, sh, sw, ph, pw, dx):
    """Route each output gradient to its switch: dx = 0, then dx[n, c, s // W, s % W] += g[n, c, oy, ox].

    dx is overwritten, each plane zeroed by the thread that then scatters into it (while it is in
    cache). (The window geometry is not needed here; the GPU kernel, which gathers, uses it.)
    """
    N, C, H, W = dx.shape
    oh, ow = grad_out.shape[2], grad_out.shape[3]
    for nc in prange(N * C):
        g_plane = grad_out[nc // C, nc % C]                 # 2-D views of one (image, channel) plane
        switch_plane = switches[nc // C, nc % C]
        dx_plane = dx[nc // C, nc % C].reshape(-1)          # flat: the switches are flat indices
        dx_plane[:] = 0
        for oy in range(oh):
            for ox in range(ow):
                dx_plane[switch_plane[oy, ox]] += g_plane[oy, ox]


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
        dx[k] = g[k] if _relu_passes(g[k], y[k] > 0, rule) else 0


# ------------------------------------------------------------------------------------------------
# The convolution's kernels again, compiled without Numba's threads and without holding the GIL:
# each of the engine's own threads runs them on a chunk of its own (parallel.py), so
# serial.im2col(...) computes what im2col(...) does, on the calling thread alone.
# ------------------------------------------------------------------------------------------------
def _serial(kernel):
    f = kernel.py_func
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    g.__qualname__ = f.__qualname__ + "_serial"            # its own entry in Numba's cache
    g.__doc__ = f.__doc__
    return njit(cache=True, nogil=True)(g)                  # prange runs as range


serial = types.SimpleNamespace(**{k.py_func.__name__: _serial(k) for k in (
    im2col, col2im, gemm_out_to_nchw, nchw_to_gemm)}, NO_RELU=NO_RELU)
