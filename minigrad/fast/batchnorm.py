"""The fast tier's batch normalisation: see simple.py's BatchNorm for the maths.

Optimisations made:
- the per-channel work is done on (C,) vectors: the normalisation and the affine become one
  ``x * scale + shift`` (scale = gamma / sqrt(var + eps), shift = beta - mean * scale), two passes
  over the big array, the second in place; the normalised values are not kept (the backward, which
  needs them only for the weight gradient and the training-mode input gradient, reduces over
  ``g * (x - mean)`` instead);
- the training backward is dx = scale * (g - mean(g)) - (x - mean) * (scale * inv_std * mean(g * xhat)),
  per-channel coefficients times two arrays, without the simple tier's dxhat and xhat temporaries;
- inference: a network folds the batch norm into the convolution before it instead, when nothing
  needs the weights' gradient (models/blocks.py: ``fold_bn``; ``F.conv2d(..., scale=)``), and no pass
  of its own runs.

Written with ``xp`` for NumPy and CuPy alike (no kernels of its own).
"""
from ..backend import get_array_module
from ..tensor import Function

AXES = (0, 2, 3)                                     # a channel's values: over the batch and the image

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
    """Tensors x, weight, bias; the running statistics are arrays, updated in place when training."""
    return BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                           training=training, momentum=momentum, eps=eps)
