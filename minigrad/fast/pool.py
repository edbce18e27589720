"""The fast tier's pooling: see simple.py's MaxPool2d, which stacks the kh*kw shifted copies of the
input padded with -inf, and its GlobalAvgPool2d.

Optimisations made: one compiled loop over each (image, channel) plane (cpu_kernels.py,
gpu_kernels.py) finds each window's maximum and its switch without building the kh*kw copies, and
without a padded copy of the input (each window is clipped to the image: the padding never wins); the
backward adds each gradient at its switch (CPU) or gathers per input element (GPU, no atomics).
Global average pooling is one mean over each plane already: the simple tier's op serves both tiers.
"""
import numpy as np

from ..backend import get_array_module
from ..simple import global_avg_pool2d  # noqa: F401  (the same op on both tiers: nothing to speed up)
from ..tensor import Function
from .kernels import for_array


class MaxPool2d(Function):
    """out[n, c, y, x] = max_{i<kh, j<kw} x[n, c, y*sh + i - ph, x*sw + j - pw] over the cells inside x;
    the backward uses the switches."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding=(0, 0)):
        xp, kernels = get_array_module(x), for_array(x)
        x = xp.ascontiguousarray(x)
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        N, C, H, W = x.shape
        oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
        out = xp.empty((N, C, oh, ow), x.dtype)
        switches = xp.empty((N, C, oh, ow), xp.int32)                    # flat index y*W + x
        kernels.maxpool_forward(x, kh, kw, sh, sw, ph, pw, out, switches)
        ctx.save_for_backward(switches)
        ctx.shape, ctx.window = x.shape, (kh, kw, sh, sw, ph, pw)
        return out

    @staticmethod
    def backward(ctx, g):
        xp, kernels = get_array_module(g), for_array(g)
        (switches,) = ctx.saved
        dx = (xp.empty if xp is np else xp.zeros)(ctx.shape, g.dtype)     # the CPU kernel zeroes its planes
        kernels.maxpool_backward(xp.ascontiguousarray(g), switches, *ctx.window, dx)
        return dx


def max_pool2d(x, kernel_size, stride, padding=(0, 0)):
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)
