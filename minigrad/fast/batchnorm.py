"""The fast tier's batch normalisation: see simple.py's BatchNorm for the maths.

Optimisations made:
- the per-channel work is done on (C,) vectors: the normalisation and the affine become one
  ``x * scale + shift`` (scale = gamma / sqrt(var + eps), shift = beta - mean * scale), two passes
  over the big array, the second in place; the normalised values are not kept (the backward, which
  needs them only for the weight gradient and the training-mode input gradient, reduces over
  ``g * (x - mean)`` instead);
- the training backward is dx = scale * (g - mean(g)) - (x - mean) * (scale * inv_std * mean(g * xhat)),
  per-channel coefficients times two arrays, without the simple tier's dxhat and xhat temporaries;
- inference: when the input is the put-off output of a fast convolution (conv.py, ``pending``),
  neither the convolution's weights and bias nor gamma and beta need a gradient, and the weights are
  not larger than the output (``FOLD_MAX_WEIGHTS_PER_OUTPUT``), the affine is folded
  into that convolution, ``w' = w * scale``, ``b' = (b - mean) * scale + beta``, and no pass of its
  own runs; the folded convolution is put off in turn, so a ReLU that reads it fuses too
  (conv+BN+ReLU: one op). The gradient with respect to the input still flows (saliency needs it).

Written with ``xp`` for NumPy and CuPy alike (no kernels of its own).
"""
from ..backend import get_array_module
from ..tensor import Function, is_grad_enabled
from . import conv

AXES = (0, 2, 3)                                     # a channel's values: over the batch and the image

#: inference: fold a batch norm into the convolution before it when that convolution's weights hold at
#: most this many elements per element of its output. Folding costs a pass over the weights (w * scale)
#: at every call and saves the batch norm's pass over the output (and the ReLU's, which then fuses):
#: measured at batch 1 on one thread, 64->64 3x3 at 56x56 (weights 0.2 of the output) ran 4.3 ms
#: folded against 5.9 unfolded, 512->512 3x3 at 7x7 (weights 94 times the output) 12.9 against 11.1.
#: 0: never fold; float("inf"): always.
FOLD_MAX_WEIGHTS_PER_OUTPUT = 1.0


def _channel(v):
    return v[:, None, None]                          # (C,) -> (C, 1, 1), broadcasts over (N, C, H, W)


class BatchNorm(Function):
    """out = x * scale + shift per channel; see the module docstring and simple.py's BatchNorm."""

    @staticmethod
    def forward(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        xp = get_array_module(x)
        if training:
            M = x.size // x.shape[1]
            mean = x.mean(axis=AXES)                                        # (C,)
            out = x - _channel(mean)                                        # (N, C, H, W), x - mean
            var = xp.einsum("nchw,nchw->c", out, out) / M                   # (C,), biased
            running_mean *= 1 - momentum                                    # in place: the caller's arrays
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * M / (M - 1) * var
            inv_std = 1 / xp.sqrt(var + eps)                                # (C,)
            out *= _channel(gamma * inv_std)                                # in place
            out += _channel(beta)
        else:
            mean = running_mean
            inv_std = 1 / xp.sqrt(running_var + eps)
            scale = gamma * inv_std
            out = x * _channel(scale)                                       # (N, C, H, W)
            out += _channel(beta - mean * scale)
        ctx.save_for_backward(x, gamma, mean.copy(), inv_std)               # the running mean changes later
        ctx.training = training
        return out

    @staticmethod
    def backward(ctx, g):
        x, gamma, mean, inv_std = ctx.saved
        xp = get_array_module(g)
        need_x, need_gamma, need_beta = ctx.needs_input_grad
        scale = gamma * inv_std
        gsum = g.sum(axis=AXES)                                             # (C,) = dbeta
        dgamma = None
        if need_gamma or (need_x and ctx.training):                         # sum g * xhat
            dgamma = (xp.einsum("nchw,nchw->c", g, x) - mean * gsum) * inv_std
        dx = None
        if need_x and ctx.training:
            M = g.size // g.shape[1]
            dx = g - _channel(gsum / M)                                     # (N, C, H, W)
            dx *= _channel(scale)
            dx -= (x - _channel(mean)) * _channel(scale * inv_std * dgamma / M)
        elif need_x:
            dx = g * _channel(scale)
        return dx, (dgamma if need_gamma else None), (gsum if need_beta else None)


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Tensors x, weight, bias; the running statistics are arrays. Folded into the convolution that
    made x when it can be (``folded``), else the BatchNorm op."""
    if not training:
        fused = folded(x, weight, bias, running_mean, running_var, eps)
        if fused is not None:
            return fused
    return BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                           training=training, momentum=momentum, eps=eps)


def folded(x, weight, bias, running_mean, running_var, eps):
    """The inference-mode batch norm of x as one put-off fast convolution with the affine folded into
    its weights and bias, when x is a put-off convolution's output that nothing has read, and neither
    its weights and bias nor gamma and beta need a gradient, and the weights are not larger than the
    output (``FOLD_MAX_WEIGHTS_PER_OUTPUT``); else None. x itself stays unevaluated
    (computed, unfolded, only if something reads it later)."""
    later = conv.pending(x)
    if later is None:
        return None
    ctx, x_in, w, *b = later.args                                          # the convolution's arrays
    if any(ctx.needs_input_grad[1:]) or (is_grad_enabled() and (weight.requires_grad or bias.requires_grad)):
        return None
    if w.size > FOLD_MAX_WEIGHTS_PER_OUTPUT * x.size:                      # weights (O, C, kh, kw) vs output
        return None
    xp = get_array_module(w)
    scale = weight.data / xp.sqrt(running_var + eps)                        # (O,)
    w = w * scale[:, None, None, None]                                      # (O, C, kh, kw)
    b = ((b[0] if b else 0) - running_mean) * scale + bias.data             # (O,)
    source = x._inputs[0] if x._inputs else x_in                            # the convolution's input
    return conv.put_off(source, w, b, later.keywords["stride"], later.keywords["padding"])
