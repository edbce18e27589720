"""The fast tier's max pooling: see simple.py's MaxPool2d, which stacks the kh*kw shifted copies.

Optimisations made: one compiled loop over each (image, channel) plane (cpu_kernels.py,
gpu_kernels.py) finds each window's maximum and its switch without building the kh*kw copies; the
backward adds each gradient at its switch (CPU) or gathers per input element (GPU, no atomics).
"""
from ..backend import get_array_module
from ..tensor import Function
from . import for_array


class MaxPool2d(Function):
    """out[n, c, y, x] = max_{i<kh, j<kw} x[n, c, y*sh + i, x*sw + j]; the backward uses the switches."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride):
        xp, kernels = get_array_module(x), for_array(x)
        x = xp.ascontiguousarray(x)
        (kh, kw), (sh, sw) = kernel_size, stride
        N, C, H, W = x.shape
        oh, ow = (H - kh) // sh + 1, (W - kw) // sw + 1
        out = xp.empty((N, C, oh, ow), x.dtype)
        switches = xp.empty((N, C, oh, ow), xp.int32)                    # flat index y*W + x
        kernels.maxpool_forward(x, kh, kw, sh, sw, out, switches)
        ctx.save_for_backward(switches)
        ctx.shape, ctx.window = x.shape, (kh, kw, sh, sw)
        return out

    @staticmethod
    def backward(ctx, g):
        xp, kernels = get_array_module(g), for_array(g)
        (switches,) = ctx.saved
        dx = xp.zeros(ctx.shape, g.dtype)
        kernels.maxpool_backward(xp.ascontiguousarray(g), switches, *ctx.window, dx)
        return dx, None, None


def max_pool2d(x, kernel_size, stride):
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride)
