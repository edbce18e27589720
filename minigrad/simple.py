"""The simple tier: the heavy ops as plain array code that reads like the maths.

This is the version to read to learn how an op works; the fast tier (fast/) computes the same
thing faster, and the tests hold the two equal (float64, 1e-12). Select it with
``MINIGRAD_OPS=simple`` or ``with mg.use_ops("simple"):`` (tiers.py). Each op is a Function with its
forward and, right below, its backward, written once for NumPy and CuPy through ``xp``.

- conv2d: a kh x kw kernel is kh*kw shifted 1x1 convolutions, each a GEMM over the channels; what a
  network applies right after it (a folded batch norm's scale, a shortcut, a ReLU) composed after it.
- linear: one GEMM.
- max_pool2d: the kh*kw shifted copies of the input (padded with -inf) stacked; the max over them, and
  its argmax (the "switches") routes the gradient back.
- global_avg_pool2d: the mean over each image plane.
- relu: the backward calls the function of ``relu_rules`` that defines the rule in force, so a
  breakpoint in ``relu_rules.deconvnet`` stops there on a VGG's backward pass.
- batch_norm: the batch's (training) or the running (inference) mean and variance per channel, the
  normalised values, then the per-channel affine; backwards through the statistics too when training.
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


def conv2d(x, w, b, stride, padding, scale=None, residual=None, relu=False):
    """relu(scale * conv(x, w) + b + residual), checked by heavy_ops.conv2d (stride and padding as
    pairs), composed of the ops it names, one after the other: what the fast tier runs as one op."""
    params = dict(stride=stride, padding=padding)
    if scale is None:
        out = Conv2d.apply(x, w, b, **params) if b is not None else Conv2d.apply(x, w, **params)
    else:
        out = Conv2d.apply(x, w, **params) * scale.reshape(-1, 1, 1)        # (N, O, oh, ow) * (O, 1, 1)
        if b is not None:
            out = out + b.reshape(-1, 1, 1)
    if residual is not None:
        out = out + residual
    return ReLU.apply(out) if relu else out


class Linear(Function):
    """out (N, out) = x (N, in) @ w.T (in, out) + b (out,);  dx = g @ w,  dw = g.T @ x,  db = sum_n g."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        out = x @ w.T
        return out + b if b is not None else out

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        dx = g @ w if ctx.needs_input_grad[0] else None                     # (N, in)
        dw = g.T @ x if ctx.needs_input_grad[1] else None                   # (out, in)
        db = g.sum(axis=0) if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2] else None
        return dx, dw, db


def linear(x, w, b=None):
    return Linear.apply(x, w, b) if b is not None else Linear.apply(x, w)


class MaxPool2d(Function):
    """out[n, c, y, x] = max_{i<kh, j<kw} xpad[n, c, y*sh + i, x*sw + j],   xpad = x padded with -inf

    (a padded cell never wins, PyTorch's rule). The kh*kw shifted copies of xpad stacked:
    windows[k = i*kw + j] (N, C, oh, ow); out is their max and the switch their argmax (the first
    maximum on ties, as the fast kernels). Backwards each output's gradient goes to the element its
    switch names; where windows overlap, an element that is the maximum of several windows receives
    the sum. The gradient of the padding is dropped.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding=(0, 0)):
        xp = get_array_module(x)
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-xp.inf)  # (N, C, H + 2ph, W + 2pw)
        oh, ow = (xpad.shape[2] - kh) // sh + 1, (xpad.shape[3] - kw) // sw + 1
        windows = xp.stack([_shifted(xpad, i, j, sh, sw, oh, ow)
                            for i, j in product(range(kh), range(kw))])   # (kh*kw, N, C, oh, ow)
        switches = windows.argmax(axis=0)                                  # (N, C, oh, ow): which k
        ctx.save_for_backward(switches)
        ctx.shape, ctx.window = xpad.shape, (kh, kw, sh, sw, ph, pw)
        return windows.max(axis=0)                                         # (N, C, oh, ow)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        (switches,) = ctx.saved
        kh, kw, sh, sw, ph, pw = ctx.window
        oh, ow = g.shape[2:]
        dxpad = xp.zeros(ctx.shape, g.dtype)                               # (N, C, H + 2ph, W + 2pw)
        for k, (i, j) in enumerate(product(range(kh), range(kw))):
            _shifted(dxpad, i, j, sh, sw, oh, ow)[...] += g * (switches == k)  # where tap (i, j) won
        H, W = ctx.shape[2] - 2 * ph, ctx.shape[3] - 2 * pw
        return dxpad[:, :, ph:ph + H, pw:pw + W]                           # (N, C, H, W)


def max_pool2d(x, kernel_size, stride, padding=(0, 0)):
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


class GlobalAvgPool2d(Function):
    """out[n, c] = 1/(H*W) sum_{y, x} x[n, c, y, x];   backwards every pixel gets dx[n, c, y, x] = g[n, c] / (H*W)."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.mean(axis=(2, 3))                                         # (N, C)

    @staticmethod
    def backward(ctx, g):
        N, C, H, W = ctx.shape
        dx = get_array_module(g).empty(ctx.shape, g.dtype)                 # (N, C, H, W)
        dx[...] = (g / (H * W))[:, :, None, None]
        return dx


def global_avg_pool2d(x):
    return GlobalAvgPool2d.apply(x)


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


def _channel(v):
    """A per-channel vector (C,) shaped to broadcast over (N, C, H, W)."""
    return v[:, None, None]


class BatchNorm(Function):
    """Batch normalisation (Ioffe & Szegedy 2015), per channel c over the M = N*H*W values x[:, c]:

        training:   mu = mean(x),  var = mean((x - mu)^2)   (the batch's statistics; var biased)
                    running_mean <- (1 - m) running_mean + m mu
                    running_var  <- (1 - m) running_var  + m var * M / (M - 1)   (unbiased, as PyTorch)
        inference:  mu, var = running_mean, running_var      (so the op is a per-channel affine)
        xhat = (x - mu) / sqrt(var + eps),     out = gamma * xhat + beta

    Backwards, with dxhat = g * gamma and means over the channel's M values:
        dbeta = sum g,    dgamma = sum g * xhat
        inference:  dx = dxhat / sqrt(var + eps)
        training:   dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)
    (in training mu and var depend on x too: the two means are their contribution).
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        xp = get_array_module(x)
        axes = (0, 2, 3)                                                   # a channel's values
        if training:
            mu = x.mean(axis=axes)                                         # (C,)
            var = ((x - _channel(mu)) ** 2).mean(axis=axes)                # (C,), biased
            M = x.size // x.shape[1]
            running_mean *= 1 - momentum                                   # in place: the caller's arrays
            running_mean += momentum * mu
            running_var *= 1 - momentum
            running_var += momentum * M / (M - 1) * var
        else:
            mu, var = running_mean, running_var
        inv_std = 1 / xp.sqrt(var + eps)                                   # (C,)
        xhat = (x - _channel(mu)) * _channel(inv_std)                      # (N, C, H, W)
        ctx.save_for_backward(xhat, gamma, inv_std)
        ctx.training = training
        return _channel(gamma) * xhat + _channel(beta)

    @staticmethod
    def backward(ctx, g):
        xhat, gamma, inv_std = ctx.saved
        axes = (0, 2, 3)
        dxhat = g * _channel(gamma)
        if ctx.training:
            dx = (dxhat - dxhat.mean(axis=axes, keepdims=True)
                  - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)) * _channel(inv_std)
        else:
            dx = dxhat * _channel(inv_std)
        return dx, (g * xhat).sum(axis=axes), g.sum(axis=axes)


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Tensors x, weight, bias; the running statistics are arrays, updated in place when training."""
    return BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                           training=training, momentum=momentum, eps=eps)
