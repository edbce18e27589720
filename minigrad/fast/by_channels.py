"""An im2col convolution (conv.py) whose weights need no gradient, with fewer images than threads,
split between the threads by channels rather than into bands of rows of an image: where there are
more output channels than pixels an image (each band would read all the weights again), or, for the
input gradient, where the bands are too few to keep the threads busy."""
import numpy as np

from ..backend import get_array_module
from . import parallel
from .kernels import for_one_thread
from .memory import scratch


def applies(xp, N, O, P):
    """Whether an im2col convolution without weight gradients splits each image's work between the
    threads by channels rather than into bands of rows: fewer images than threads, and more output
    channels than output pixels an image (VGG16's conv5 at 14x14, ResNet-50's 3x3 layers at 14x14 and
    7x7), where the weights outweigh an image's patch matrix and every band would read all of them
    again (``forward``, ``input_gradient``)."""
    return N < parallel.parts(xp) and O > P


def groups(n, parts):
    """[(start, stop)]: n channels in at most ``parts`` groups of consecutive ones."""
    step = -(-n // parts)
    return [(c0, min(c0 + step, n)) for c0 in range(0, n, step)]


def forward(x, w2, bias, relu, geometry, out_size, out, extra):
    """The forward of a convolution that ``applies``, one image at a time: its whole patch matrix, each
    thread writing the rows of its own input channels, then each thread the GEMM of its own output
    channels' rows of W, bias (scale, ReLU) applied in place (``gemm_out_to_nchw``)."""
    kernels, parts = for_one_thread(x), parallel.parts(np)
    C, (O, Kc), (oh, ow) = x.shape[1], w2.shape, out_size
    taps = Kc // C
    for n in range(x.shape[0]):
        cols = scratch(np, "cols", (Kc, oh * ow), x.dtype)

        def patches(group):
            c0, c1 = group
            kernels.im2col(x[n:n + 1, c0:c1], 0, 0, *geometry, oh, ow, cols[c0 * taps:c1 * taps])

        def outputs(group):
            o0, o1 = group
            np.matmul(w2[o0:o1], cols, out=out[n, o0:o1])
            kernels.gemm_out_to_nchw(out[n, o0:o1], bias[o0:o1], relu, 0, 0, out[n:n + 1, o0:o1],
                                     *(e[o0:o1] for e in extra))
        parallel.for_each(patches, groups(C, parts))
        parallel.for_each(outputs, groups(O, parts))


def input_gradient(ctx, x, w2, g, y, rule, kernels):
    """dx of an input gradient whose images came in too few bands to keep the threads busy (one
    image of 14x14 or 7x7: two bands, which share rows, so one would run after the other), or
    where ``applies``: one image at a time, its input channels split between the threads, each
    doing the GEMM and col2im of its own channels' rows of the patch matrix (which own disjoint parts
    of dx). col2im adds each dx element's terms in the order of one whole-image chunk (the split
    GEMM's blocking may differ from the whole one's)."""
    xp = get_array_module(x)
    kh, kw = ctx.geometry[:2]
    N, C = x.shape[:2]
    O, P = g.shape[1:]
    oh, ow = ctx.out_size
    dx = xp.empty_like(x)
    for n in range(N):
        if rule == kernels.NO_RELU:
            gp = g[n]                                                      # (O, P): a view, already packed
        else:
            gp = scratch(xp, "gemm", (O, P), g.dtype)                       # through the ReLU's rule
            kernels.nchw_to_gemm(g, y, rule, n, 0, gp)

        def channels(group):
            c0, c1 = group
            rows = w2[:, c0 * kh * kw:c1 * kh * kw].T                      # (K of these channels, O)
            dcols = xp.matmul(rows, gp, out=scratch(xp, "cols", (rows.shape[0], P), x.dtype))
            part = dx[n:n + 1, c0:c1]
            part[...] = 0
            kernels.col2im(dcols, 0, 0, *ctx.geometry, oh, ow, part)
        parallel.for_each(channels, groups(C, parallel.parts(xp)), xp)
    return dx
