"""The fast tier's 1x1 unpadded convolutions (ResNet's bottlenecks and shortcuts): conv.py's Conv2d
hands them here (``POINTWISE_GEMM``); see simple.py's Conv2d for the maths.

A 1x1 convolution is one GEMM per image over the channels, on the input itself:

    out[n] (O, P) = W (O, C) @ xs[n] (C, P)        xs = x[:, :, ::sh, ::sw]

Optimisations made (measured on ResNet-50's 1x1 layers; docs/performance.md):
- no patch matrix: for a 1x1 convolution it would be a copy of the input (a stride subsamples the
  input first, ``_subsampled``);
- on the CPU the GEMM writes straight into blocks of the output's rows of one image
  (``POINTWISE_BLOCK``), one thread a block, and each block is finished while it is in cache: the
  folded batch norm's scale, the bias, a residual block's shortcut (``F.conv2d``'s ``residual``) and
  the ReLU applied in one pass, with no temporaries (fresh arrays cost page faults);
- backwards the weights' transpose is a view (the BLAS reads it as such), and dx goes in blocks of
  rows as the forward.
"""
import numpy as np

from . import parallel
from ..backend import get_array_module


def _subsampled(x, stride):
    """x[:, :, ::sh, ::sw] (N, C, oh, ow): the pixels that a 1x1 unpadded convolution with this stride reads."""
    if tuple(stride) == (1, 1):
        return x
    return get_array_module(x).ascontiguousarray(x[:, :, ::stride[0], ::stride[1]])


#: a 1x1 convolution's GEMM on the CPU goes in blocks of output rows (channels) of one image, of about
#: this many elements (float32: 512 KB), each thread taking whole blocks: the GEMM writes straight
#: into the output, and the scale, bias, residual and ReLU are applied while the block is in cache.
POINTWISE_BLOCK = 2**17
POINTWISE_MIN_ROWS = 16                                                    # ... and of at least this many rows


def blocks(N, O, P, parts):
    """(n, o0, o1): blocks of rows of out[n] (O, P), about POINTWISE_BLOCK elements, at least ``parts``."""
    rows = min(O, max(POINTWISE_MIN_ROWS, POINTWISE_BLOCK // P))
    per_image = -(-parts // N)                                             # blocks an image needs
    rows = max(1, min(rows, -(-O // per_image)))
    return [(n, o0, min(o0 + rows, O)) for n in range(N) for o0 in range(0, O, rows)]


def forward(x, w, bias, stride, fuse_relu, kernels, scale=None, residual=None):
    """A 1x1 unpadded convolution is one GEMM per image over the channels, on the input itself (its
    patch matrix would be x, copied); a stride first subsamples x:
        out[n] (O, P) = W (O, C) @ xs[n] (C, P),      xs = x[:, :, ::sh, ::sw]
    On the CPU out[n] goes in blocks of rows, one thread a block (``blocks``): the GEMM writes into the
    output itself and the block is finished (scale, bias, residual, ReLU) while it is in cache, with
    no temporaries (fresh arrays cost page faults)."""
    xp = get_array_module(x)
    xs = _subsampled(x, stride)                                            # (N, C, oh, ow)
    N, C, oh, ow = xs.shape
    O, P = w.shape[0], oh * ow
    w2, xs = xp.ascontiguousarray(w.reshape(O, C)), xs.reshape(N, C, P)
    out = xp.empty((N, O, P), x.dtype)                                     # (N, O, P)
    if xp is not np:                                                       # GPU: a GEMM per image, then the
        for n in range(N):                                                 # bias (+ ReLU) in place
            xp.matmul(w2, xs[n], out=out[n])
            kernels.gemm_out_to_nchw(out[n], bias, fuse_relu, 0, 0, out[n:n + 1])
        return out.reshape(N, O, oh, ow)
    r = None if residual is None else np.ascontiguousarray(residual).reshape(N, O, P)

    def block(item):
        n, o0, o1 = item
        np.matmul(w2[o0:o1], xs[n], out=out[n, o0:o1])                     # (o1 - o0, P), in place
        kernels.gemm_out_to_nchw(out[n, o0:o1], bias[o0:o1], fuse_relu, 0, 0, out[n:n + 1, o0:o1],
                                 None if scale is None else scale[o0:o1],
                                 None if r is None else r[n:n + 1, o0:o1])
    parallel.for_each(block, blocks(N, O, P, parallel.threads()))
    return out.reshape(N, O, oh, ow)


def backward(x, w, g, stride, need_x, need_w):
    """(dx, dW), None where not needed: the GEMMs transposed, g (N, O, oh, ow) contiguous and already
    through the fused ReLU's rule and a folded scale (conv.py: ``_pointwise_backward``):
        dW (O, C) = sum_n g[n] (O, P) @ xs[n].T (P, C)     dxs[n] (C, P) = W.T (C, O) @ g[n] (O, P)
    and dx is dxs where xs came from (0 at the pixels a stride skipped). W.T is a transposed view (the
    BLAS reads it as such; no copy); on the CPU dxs goes in blocks of rows as the forward."""
    xp = get_array_module(g)
    N, O, oh, ow = g.shape
    C, P = x.shape[1], oh * ow
    g = g.reshape(N, O, P)                                                 # (N, O, P)
    w2 = w.reshape(O, C)                                                   # (O, C)
    dx = dw = None
    if need_w:
        xs = _subsampled(x, stride).reshape(N, C, P)                       # (N, C, P)
        dw = xp.zeros((O, C), g.dtype)
        for n in range(N):
            dw += parallel.matmul(g[n], xs[n].T)                           # (O, P) @ (P, C)
        dw = dw.reshape(w.shape)
    if need_x:
        w2t = w2.T                                                         # (C, O), a view
        dxs = xp.empty((N, C, P), g.dtype)
        if xp is np:
            def block(item):
                n, c0, c1 = item
                np.matmul(w2t[c0:c1], g[n], out=dxs[n, c0:c1])
            parallel.for_each(block, blocks(N, C, P, parallel.threads()))
        else:
            for n in range(N):
                xp.matmul(w2t, g[n], out=dxs[n])
        dxs = dxs.reshape(N, C, oh, ow)
        if dxs.shape == x.shape:
            dx = dxs
        else:
            dx = xp.zeros_like(x)
            dx[:, :, ::stride[0], ::stride[1]] = dxs
    return dx, dw
