"""numba.cuda kernels on CuPy arrays: the same names, arguments and maths as cpu_kernels.py.

Each public function launches one CUDA kernel over the elements it writes, one thread per element;
CuPy arrays reach Numba through DLPack / ``__cuda_array_interface__`` (no copies). Where the CPU
kernels scatter (col2im, the max-pool backward), these gather instead: each thread sums the
contributions that land on its own element, so no atomics are needed and the result is deterministic.

Because they are Numba kernels, the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs them on NumPy
arrays on any machine: the test suite checks their indexing against the CPU kernels everywhere, and
compiles them for a real GPU architecture (tests/minigrad/test_gpu_compile.py).

The optimisations made, against a plain translation of the CPU loops:

- compiled once: ``cache=True`` keeps the compiled code on disk between runs, and the launchers
  pass the same argument types every time (arrays, ``uint32`` sizes), so each kernel compiles once
  per dtype;
- 32-bit unsigned index arithmetic (``_split``): a GPU has no 64-bit integer division, it emulates
  it in dozens of instructions, and index division is most of what im2col and col2im do. The
  launchers refuse more than 2**31 threads, so every index fits;
- accumulators and constants in the array's dtype (``dx.dtype.type(0)``): a bare ``0``
  would make Numba type the branch, and so the sum, as float64;
- launched on CuPy's current stream and device (``_launch``), so a kernel never races the cuBLAS
  GEMM before it or the reuse of a scratch buffer after it, and never waits for the host;
- Numba's "low occupancy" warning is silenced: the late layers of a network are small by nature.

The Winograd kernels (winograd_kernels.py) have no counterpart here: conv.py uses Winograd on the CPU only,
and convolutions on a GPU always go by im2col + cuBLAS.
"""
import warnings

import numpy as np
from numba import cuda, uint32

from ..relu_rules import code

THREADS = 256
GRADIENT, DECONVNET, GUIDED = (code(name) for name in ("gradient", "deconvnet", "guided"))   # relu_rules' codes
NO_RELU = -1
MAX_THREADS = 2**31            # one launch covers at most this many elements (32-bit indices)

# Numba's own warning class varies with the version (numba.core.errors, numba.cuda.core.errors) and its
# message may start with terminal colour codes: match the message alone, anywhere.
warnings.filterwarnings("ignore", message=r".*Grid size \d+ will likely result in GPU under-utilization")


@cuda.jit(device=True, inline="always", cache=True)
def _split(a, b):
    """(a // b, a % b) in 32-bit unsigned arithmetic (one hardware division)."""
    q = uint32(a // b)
    return q, uint32(a - q * b)


@cuda.jit(cache=True)
def _im2col(x, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    # cols[(c*kh + i)*kw + j, n*P + oy*ow + ox] = x[n0 + n, c, (oy0 + oy)*sh + i - ph, ox*sw + j - pw]  (0 outside)
    t = uint32(cuda.grid(1))
    if t >= cols.size:
        return
    r, q = _split(t, uint32(cols.shape[1]))
    n, p = _split(q, uint32(oh * ow))
    oy, ox = _split(p, ow)
    c, ij = _split(r, uint32(kh * kw))
    i, j = _split(ij, kw)
    y, xx = (oy0 + oy) * sh + i, ox * sw + j            # in the padded image (unsigned: no negatives)
    if ph <= y < uint32(x.shape[2]) + ph and pw <= xx < uint32(x.shape[3]) + pw:
        cols[r, q] = x[n0 + n, c, y - ph, xx - pw]
    else:
        cols[r, q] = cols.dtype.type(0)


@cuda.jit(cache=True)
def _col2im(cols, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, nb, dx):
    # dx[n0 + n, c, y, x] += sum over (i, j) with y = (oy0 + oy)*sh + i - ph, x = ox*sw + j - pw, 0 <= oy < oh,
    # of cols[(c, i, j), (n, oy, ox)]
    t = uint32(cuda.grid(1))
    C, H, W = uint32(dx.shape[1]), uint32(dx.shape[2]), uint32(dx.shape[3])
    if t >= nb * C * H * W:
        return
    rest, xx = _split(t, W)
    rest, y = _split(rest, H)
    n, c = _split(rest, C)
    acc = dx.dtype.type(0)
    for i in range(kh):
        if y + ph < i:
            continue
        oy, ry = _split(uint32(y + ph - i), sh)       # oy here counts from the image's first row
        if ry != 0 or oy < oy0 or oy >= oy0 + oh:
            continue
        for j in range(kw):
            if xx + pw < j:
                continue
            ox, rx = _split(uint32(xx + pw - j), sw)
            if rx != 0 or ox >= ow:
                continue
            acc += cols[(c * kh + i) * kw + j, n * oh * ow + (oy - oy0) * ow + ox]
    dx[n0 + n, c, y, xx] += acc


@cuda.jit(cache=True)
def _gemm_out_to_nchw(y, b, relu, n0, p0, out):
    # out[n0 + n, o, p0 + p] = max(y[o, n*Pc + p] + b[o], 0 if relu), Pc = min(P, width)
    t = uint32(cuda.grid(1))
    if t >= y.size:
        return
    width = uint32(y.shape[1])
    o, q = _split(t, width)
    n, p = _split(q, uint32(min(out.shape[2], width)))
    v = y[o, q] + b[o]
    if relu and not v > 0:                              # as relu_forward: NaN becomes 0 too
        v = out.dtype.type(0)
    out[n0 + n, o, p0 + p] = v


@cuda.jit(device=True, inline="always", cache=True)
def _relu_passes(v, y_positive, rule):
    # GRADIENT: [x > 0]; DECONVNET: [v > 0]; GUIDED: [v > 0] and [x > 0]
    if rule != DECONVNET and not y_positive:
        return False
    if rule != GRADIENT and not v > 0:
        return False
    return True


@cuda.jit(cache=True)
def _nchw_to_gemm(g, y, rule, n0, p0, out):
    # out[o, n*Pc + p] = rule(g[n0 + n, o, p0 + p], [y[...] > 0]) (plain g for NO_RELU), Pc = min(P, width)
    t = uint32(cuda.grid(1))
    if t >= out.size:
        return
    width = uint32(out.shape[1])
    o, q = _split(t, width)
    n, p = _split(q, uint32(min(g.shape[2], width)))
    v = g[n0 + n, o, p0 + p]
    if rule != NO_RELU and not _relu_passes(v, y[n0 + n, o, p0 + p] > 0, rule):
        v = out.dtype.type(0)
    out[o, q] = v


@cuda.jit(cache=True)
def _maxpool_forward(x, kh, kw, sh, sw, ph, pw, out, switches):
    # out[n, c, oy, ox] = max of the window's cells inside x, switches = flat index y*W + x of its first
    # maximum; rows and columns counted in the padded image (unsigned: no negatives), y = row - ph
    t = uint32(cuda.grid(1))
    if t >= out.size:
        return
    H, W = uint32(x.shape[2]), uint32(x.shape[3])
    rest, ox = _split(t, uint32(out.shape[3]))
    rest, oy = _split(rest, uint32(out.shape[2]))
    n, c = _split(rest, uint32(out.shape[1]))
    y0, y1 = max(oy * sh, ph), min(oy * sh + kh, H + ph)       # the window's rows inside x
    x0, x1 = max(ox * sw, pw), min(ox * sw + kw, W + pw)
    best = x[n, c, y0 - ph, x0 - pw]
    arg = (y0 - ph) * W + x0 - pw
    for y in range(y0 - ph, y1 - ph):
        for xx in range(x0 - pw, x1 - pw):
            v = x[n, c, y, xx]
            if v > best:
                best = v
                arg = y * W + xx
    out[n, c, oy, ox] = best
    switches[n, c, oy, ox] = arg


@cuda.jit(cache=True)
def _maxpool_backward(grad_out, switches, kh, kw, sh, sw, ph, pw, dx):
    # dx[n, c, y, x] = sum of g[n, c, oy, ox] over the windows whose switch is (y, x): the windows
    # holding row y (y + ph in the padded image) are oy = ceil((y + ph - kh + 1) / sh) .. (y + ph) // sh
    # (clipped to the output)
    t = uint32(cuda.grid(1))
    if t >= dx.size:
        return
    W = uint32(dx.shape[3])
    rest, xx = _split(t, W)
    rest, y = _split(rest, uint32(dx.shape[2]))
    n, c = _split(rest, uint32(dx.shape[1]))
    ypad, xpad = uint32(y + ph), uint32(xx + pw)                  # in the padded image
    oy_lo = _split(uint32(ypad + sh - kh), sh)[0] if ypad + sh >= kh else uint32(0)
    ox_lo = _split(uint32(xpad + sw - kw), sw)[0] if xpad + sw >= kw else uint32(0)
    oy_hi = min(uint32(grad_out.shape[2]), uint32(ypad // sh + uint32(1)))
    ox_hi = min(uint32(grad_out.shape[3]), uint32(xpad // sw + uint32(1)))
    me = uint32(y * W + xx)
    acc = dx.dtype.type(0)
    for oy in range(oy_lo, oy_hi):
        for ox in range(ox_lo, ox_hi):
            if switches[n, c, oy, ox] == me:
                acc += grad_out[n, c, oy, ox]
    dx[n, c, y, xx] += acc


@cuda.jit(cache=True)
def _relu_forward(x, out):
    k = uint32(cuda.grid(1))
    if k < x.size:
        v = x[k]
        out[k] = v if v > 0 else out.dtype.type(0)


@cuda.jit(cache=True)
def _relu_backward(y, g, rule, dx):
    # GRADIENT: g * [x > 0]; DECONVNET: g * [g > 0]; GUIDED: g * [g > 0] * [x > 0]
    k = uint32(cuda.grid(1))
    if k < g.size:
        dx[k] = g[k] if _relu_passes(g[k], y[k] > 0, rule) else dx.dtype.type(0)


# ------------------------------------------------------------------------------------------------
# launching: on the arrays' device and CuPy's current stream there
# ------------------------------------------------------------------------------------------------
_streams = {}                   # (device, stream pointer) -> Numba's handle on that stream


def _stream(cupy, device):
    """Numba's handle on CuPy's current stream of ``device``; 0 (the legacy default stream, which is
    also CuPy's null stream) when CuPy is on its null stream."""
    ptr = cupy.cuda.get_current_stream(device).ptr
    if not ptr:
        return 0
    key = (device, ptr)
    if key not in _streams:
        _streams[key] = cuda.external_stream(ptr)
    return _streams[key]


def _launch(kernel, n, *args):
    """kernel[blocks, THREADS, stream](*args) with one thread per element of ``n``."""
    if n >= MAX_THREADS:
        raise ValueError(f"a GPU kernel over {n} elements: more than the {MAX_THREADS} its 32-bit "
                         "indices allow; use a smaller batch")
    blocks = max(1, -(-n // THREADS))
    if isinstance(args[0], np.ndarray):                 # NumPy arrays: the CUDA simulator (the tests)
        kernel[blocks, THREADS](*args)
        return
    import cupy
    device = args[0].device.id
    with cuda.gpus[device]:
        kernel[blocks, THREADS, _stream(cupy, device)](*args)


def _u32(*values):
    return tuple(np.uint32(v) for v in values)


# The launchers: the signatures of cpu_kernels.py.
def im2col(x, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    _launch(_im2col, cols.size, x, *_u32(n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow), cols)


def col2im(cols, n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, dx):
    nb = cols.shape[1] // (oh * ow)
    _launch(_col2im, nb * dx[0].size, cols, *_u32(n0, oy0, kh, kw, sh, sw, ph, pw, oh, ow, nb), dx)


def gemm_out_to_nchw(y, b, relu, n0, p0, out):
    _launch(_gemm_out_to_nchw, y.size, y, b, bool(relu), *_u32(n0, p0), out)


def nchw_to_gemm(g, y, rule, n0, p0, out):
    _launch(_nchw_to_gemm, out.size, g, y, np.int32(rule), *_u32(n0, p0), out)


def maxpool_forward(x, kh, kw, sh, sw, ph, pw, out, switches):
    _launch(_maxpool_forward, out.size, x, *_u32(kh, kw, sh, sw, ph, pw), out, switches)


def maxpool_backward(grad_out, switches, kh, kw, sh, sw, ph, pw, dx):
    _launch(_maxpool_backward, dx.size, grad_out, switches, *_u32(kh, kw, sh, sw, ph, pw), dx)


def relu_forward(x, out):
    _launch(_relu_forward, x.size, x, out)


def relu_backward(y, g, rule, dx):
    _launch(_relu_backward, g.size, y, g, np.int32(rule), dx)
