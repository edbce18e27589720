"""numba.cuda kernels on CuPy arrays: the same names, arguments and maths as cpu_kernels.py.

Each public function launches one CUDA kernel over the elements it writes, one thread per element;
CuPy arrays reach Numba through ``__cuda_array_interface__`` (no copies). Where the CPU kernels
scatter (col2im, the max-pool backward), these gather instead: each thread sums the contributions
that land on its own element, so no atomics are needed and the result is deterministic.

Because they are Numba kernels, the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs them on NumPy
arrays on any machine: the test suite checks their indexing against the CPU kernels everywhere.

The Winograd kernels of cpu_kernels.py have no counterpart here: conv.py uses Winograd on the CPU only,
and convolutions on a GPU always go by im2col + cuBLAS.
"""
import math

from numba import cuda

from ..relu_rules import code

THREADS = 256
GRADIENT, DECONVNET, GUIDED = (code(name) for name in ("gradient", "deconvnet", "guided"))   # relu_rules' codes
NO_RELU = -1


def _blocks(n):
    return max(1, math.ceil(n / THREADS))


@cuda.jit
def _im2col(x, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    # cols[(c*kh + i)*kw + j, n*P + oy*ow + ox] = x[n0 + n, c, (oy0 + oy)*sh + i - ph, ox*sw + j - pw]  (0 outside)
    t = cuda.grid(1)
    if t >= cols.size:
        return
    P = oh * ow
    width = cols.shape[1]
    r, q = t // width, t % width
    n, p = q // P, q % P
    oy, ox = p // ow, p % ow
    c, i, j = r // (kh * kw), (r // kw) % kh, r % kw
    y, xx = (oy0 + oy) * sh + i - ph, ox * sw + j - pw
    if 0 <= y < x.shape[2] and 0 <= xx < x.shape[3]:
        cols[r, q] = x[n0 + n, c, y, xx]
    else:
        cols[r, q] = 0


@cuda.jit
def _col2im(cols, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, nb, dx):
    # dx[n0 + n, c, y, x] += sum over (i, j) with y = (oy0 + oy)*sh + i - ph, x = ox*sw + j - pw, 0 <= oy < oh,
    # of cols[(c, i, j), (n, oy, ox)]
    t = cuda.grid(1)
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    if t >= nb * C * H * W:
        return
    xx = t % W
    y = (t // W) % H
    c = (t // (W * H)) % C
    n = t // (W * H * C)
    P = oh * ow
    acc = dx[n0 + n, c, y, xx] * 0
    for i in range(kh):
        a = y + ph - i
        if a < 0 or a % sh != 0 or not oy0 <= a // sh < oy0 + oh:
            continue
        oy = a // sh - oy0
        for j in range(kw):
            b = xx + pw - j
            if b < 0 or b % sw != 0 or b // sw >= ow:
                continue
            acc += cols[(c * kh + i) * kw + j, n * P + oy * ow + b // sw]
    dx[n0 + n, c, y, xx] += acc


@cuda.jit
def _gemm_out_to_nchw(y, b, relu, n0, p0, out):
    # out[n0 + n, o, p0 + p] = max(y[o, n*Pc + p] + b[o], 0 if relu), Pc = min(P, width)
    t = cuda.grid(1)
    if t >= y.size:
        return
    width = y.shape[1]
    Pc = min(out.shape[2], width)
    o, q = t // width, t % width
    v = y[o, q] + b[o]
    if relu and not v > 0:                              # as relu_forward: NaN becomes 0 too
        v = 0
    out[n0 + q // Pc, o, p0 + q % Pc] = v


@cuda.jit(device=True)
def _relu_passes(v, y_positive, rule):
    # GRADIENT: [x > 0]; DECONVNET: [v > 0]; GUIDED: [v > 0] and [x > 0]
    if rule != DECONVNET and not y_positive:
        return False
    if rule != GRADIENT and not v > 0:
        return False
    return True


@cuda.jit
def _nchw_to_gemm(g, y, rule, n0, p0, out):
    # out[o, n*Pc + p] = rule(g[n0 + n, o, p0 + p], [y[...] > 0]) (plain g for NO_RELU), Pc = min(P, width)
    t = cuda.grid(1)
    if t >= out.size:
        return
    width = out.shape[1]
    Pc = min(g.shape[2], width)
    o, q = t // width, t % width
    n, p = n0 + q // Pc, p0 + q % Pc
    v = g[n, o, p]
    if rule != NO_RELU:
        v = v if _relu_passes(v, y[n, o, p] > 0, rule) else 0
    out[o, q] = v


@cuda.jit
def _maxpool_forward(x, kh, kw, sh, sw, out, switches):
    # out[n, c, oy, ox] = max of the window, switches = flat index y*W + x of its first maximum
    t = cuda.grid(1)
    if t >= out.size:
        return
    C, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    W = x.shape[3]
    ox = t % ow
    oy = (t // ow) % oh
    c = (t // (ow * oh)) % C
    n = t // (ow * oh * C)
    y0, x0 = oy * sh, ox * sw
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


@cuda.jit
def _maxpool_backward(grad_out, switches, kh, kw, sh, sw, dx):
    # dx[n, c, y, x] = sum of g[n, c, oy, ox] over the windows whose switch is (y, x)
    t = cuda.grid(1)
    if t >= dx.size:
        return
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    oh, ow = grad_out.shape[2], grad_out.shape[3]
    xx = t % W
    y = (t // W) % H
    c = (t // (W * H)) % C
    n = t // (W * H * C)
    me = y * W + xx
    acc = dx[n, c, y, xx] * 0
    for oy in range(max(0, (y - kh + sh) // sh), min(oh, y // sh + 1)):
        for ox in range(max(0, (xx - kw + sw) // sw), min(ow, xx // sw + 1)):
            if switches[n, c, oy, ox] == me:
                acc += grad_out[n, c, oy, ox]
    dx[n, c, y, xx] += acc


@cuda.jit
def _relu_forward(x, out):
    k = cuda.grid(1)
    if k < x.size:
        v = x[k]
        out[k] = v if v > 0 else 0


@cuda.jit
def _relu_backward(y, g, rule, dx):
    # GRADIENT: g * [x > 0]; DECONVNET: g * [g > 0]; GUIDED: g * [g > 0] * [x > 0]
    k = cuda.grid(1)
    if k < g.size:
        dx[k] = g[k] if _relu_passes(g[k], y[k] > 0, rule) else 0


# The launchers: the signatures of kernels/cpu.py.
def im2col(x, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    _im2col[_blocks(cols.size), THREADS](x, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, cols)


def col2im(cols, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, dx):
    nb = cols.shape[1] // (oh * ow)
    _col2im[_blocks(nb * dx[0].size), THREADS](cols, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, nb, dx)


def gemm_out_to_nchw(y, b, relu, n0, p0, out):
    _gemm_out_to_nchw[_blocks(y.size), THREADS](y, b, relu, n0, p0, out)


def nchw_to_gemm(g, y, rule, n0, p0, out):
    _nchw_to_gemm[_blocks(out.size), THREADS](g, y, rule, n0, p0, out)


def maxpool_forward(x, kh, kw, sh, sw, out, switches):
    _maxpool_forward[_blocks(out.size), THREADS](x, kh, kw, sh, sw, out, switches)


def maxpool_backward(grad_out, switches, kh, kw, sh, sw, dx):
    _maxpool_backward[_blocks(dx.size), THREADS](grad_out, switches, kh, kw, sh, sw, dx)


def relu_forward(x, out):
    _relu_forward[_blocks(x.size), THREADS](x, out)


def relu_backward(y, g, rule, dx):
    _relu_backward[_blocks(g.size), THREADS](y, g, rule, dx)
