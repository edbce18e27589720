"""The simple tier: the heavy ops as plain array code that reads like the maths.

This is the version to read to learn how an op works; the fast tier (fast/) computes the same
thing faster, and the tests hold the two equal (float64, 1e-12). Select it with
``MINIGRAD_OPS=simple`` or ``with mg.use_ops("simple"):`` (tiers.py). Each op is a Function with its
forward and, right below, its backward, written once for NumPy and CuPy through ``xp``.

- conv2d: a kh x kw kernel is kh*kw shifted 1x1 convolutions, each a GEMM over the channels.
- max_pool2d: the kh*kw shifted copies of the input stacked; the max over them, and its argmax
  (the "switches") routes the gradient back.
- relu: the backward calls the function of ``relu_rules`` that defines the rule in force, so a
  breakpoint in ``relu_rules.deconvnet`` stops there on a VGG's backward pass.
"""
from itertools import product

from . import relu_rules
from .backend import get_array_module
from .tensor import Function


def _shifted(a, i, j, sh, sw, oh, ow):
    """a[..., i + y*sh, j + x*sw] for y < oh, x < ow: what kernel tap (i, j) sees, for every output pixel."""
    return a[..., i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]


class Conv2d(Function):
    """out[n, o, y, x] = b[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, y*sh + i, x*sw + j]

    that is, for each kernel tap (i, j), a GEMM over the channels of the input shifted by (i, j):
        out[n] += w[:, :, i, j] (O, C) @ xs[n] (C, oh*ow),     xs = xpad shifted by (i, j), strided
    and backwards, tap by tap, the same GEMMs transposed:
        dw[:, :, i, j] = sum_n g[n] (O, P) @ xs[n].T (P, C)     dxs[n] = w[:, :, i, j].T (C, O) @ g[n] (O, P)
    with dxs added back where xs came from (the transposed convolution).
    """

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0)):
        xp = get_array_module(x)
        N, C, H, W = x.shape
        O, _, kh, kw = w.shape
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
        xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))            # (N, C, H + 2ph, W + 2pw)
        taps = xp.ascontiguousarray(w.transpose(2, 3, 0, 1))               # (kh, kw, O, C): w[:, :, i, j]
        out = xp.zeros((N, O, oh * ow), x.dtype)                           # (N, O, P)
        for i, j in product(range(kh), range(kw)):
            xs = _shifted(xpad, i, j, sh, sw, oh, ow).reshape(N, C, oh * ow)   # (N, C, P)
            out += taps[i, j] @ xs                                         # (O, C) @ (N, C, P) -> (N, O, P)
        if b is not None:
            out += b[:, None]                                              # (O, 1) over P
        ctx.save_for_backward(xpad, w)
        ctx.geometry = (sh, sw, ph, pw, oh, ow, H, W)
        return out.reshape(N, O, oh, ow)                                   # (N, O, oh, ow)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        xpad, w = ctx.saved
        sh, sw, ph, pw, oh, ow, H, W = ctx.geometry
        N, C = xpad.shape[:2]
        O, _, kh, kw = w.shape
        need_x, need_w = ctx.needs_input_grad[:2]
        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        g = g.reshape(N, O, oh * ow)                                       # (N, O, P)
        taps = xp.ascontiguousarray(w.transpose(2, 3, 0, 1))               # (kh, kw, O, C): w[:, :, i, j]
        dxpad = xp.zeros_like(xpad) if need_x else None                    # (N, C, H + 2ph, W + 2pw)
        dw = xp.zeros_like(w) if need_w else None                          # (O, C, kh, kw)
        for i, j in product(range(kh), range(kw)):
            if need_w:
                xs = _shifted(xpad, i, j, sh, sw, oh, ow).reshape(N, C, oh * ow)   # (N, C, P)
                dw[:, :, i, j] = xp.tensordot(g, xs, axes=([0, 2], [0, 2]))   # sum over n, p: (O, C)
            if need_x:
                dxs = taps[i, j].T @ g                                     # (C, O) @ (N, O, P) -> (N, C, P)
                _shifted(dxpad, i, j, sh, sw, oh, ow)[...] += dxs.reshape(N, C, oh, ow)
        dx = dxpad[:, :, ph:ph + H, pw:pw + W] if need_x else None         # (N, C, H, W): drop the padding
        db = g.sum(axis=(0, 2)) if need_b else None                        # (O,)
        return dx, dw, db


def conv2d(x, w, b, stride, padding):
    """Tensors in, checked by functional.conv2d; stride and padding as pairs."""
    params = dict(stride=stride, padding=padding)
    return Conv2d.apply(x, w, b, **params) if b is not None else Conv2d.apply(x, w, **params)


class MaxPool2d(Function):
    """out[n, c, y, x] = max_{i<kh, j<kw} x[n, c, y*sh + i, x*sw + j]

    The kh*kw shifted copies of x stacked: windows[k = i*kw + j] (N, C, oh, ow); out is their max and
    the switch their argmax (the first maximum on ties, as the fast kernels). Backwards each output's
    gradient goes to the input element its switch names; where windows overlap, an input element that
    is the maximum of several windows receives the sum.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride):
        xp = get_array_module(x)
        (kh, kw), (sh, sw) = kernel_size, stride
        oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
        windows = xp.stack([_shifted(x, i, j, sh, sw, oh, ow)
                            for i, j in product(range(kh), range(kw))])   # (kh*kw, N, C, oh, ow)
        switches = windows.argmax(axis=0)                                  # (N, C, oh, ow): which k
        ctx.save_for_backward(switches)
        ctx.shape, ctx.window = x.shape, (kh, kw, sh, sw)
        return windows.max(axis=0)                                         # (N, C, oh, ow)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        (switches,) = ctx.saved
        kh, kw, sh, sw = ctx.window
        oh, ow = g.shape[2:]
        dx = xp.zeros(ctx.shape, g.dtype)                                  # (N, C, H, W)
        for k, (i, j) in enumerate(product(range(kh), range(kw))):
            _shifted(dx, i, j, sh, sw, oh, ow)[...] += g * (switches == k)  # where tap (i, j) won
        return dx, None, None


def max_pool2d(x, kernel_size, stride):
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride)


class ReLU(Function):
    """out = max(x, 0); backwards, the rule in force (relu_rules.py): gradient, deconvnet or guided."""

    @staticmethod
    def forward(ctx, x):
        out = get_array_module(x).maximum(x, 0)
        ctx.save_for_backward(out)                                         # [out > 0] = [x > 0]
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        rule = relu_rules.in_force()                     # relu_rules.gradient, .deconvnet or .guided
        dx = rule(out > 0, g)                            # R_n from R_{n+1} = g
        relu_rules.notify(out > 0, g, dx)
        return dx


def relu(x):
    return ReLU.apply(x)
