"""Log-softmax and the cross-entropy loss (classification), on the Tensor's operators."""
from .backend import get_array_module
from .tensor import Function, Tensor


class LogSoftmax(Function):
    """out = x - log(sum(exp(x))), computed stably; backward: g - softmax * sum(g)."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = get_array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        (out,) = ctx.saved
        return g - xp.exp(out) * g.sum(axis=ctx.axis, keepdims=True)


def log_softmax(x, axis=-1):
    return LogSoftmax.apply(x, axis=axis)


def softmax(x, axis=-1):
    return log_softmax(x, axis).exp()


def cross_entropy(logits, labels):
    """Mean negative log-likelihood of integer ``labels`` (N,) under ``softmax(logits)`` (N, K)."""
    labels = labels.data if isinstance(labels, Tensor) else labels
    xp = logits.xp
    labels = xp.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"cross_entropy: logits must be (N, K) and labels (N,), got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    if labels.dtype.kind not in "iu" or labels.size and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        raise ValueError(f"cross_entropy: labels must be integers in [0, {logits.shape[1]})")
    picked = log_softmax(logits, axis=1)[xp.arange(logits.shape[0]), labels]  # (N,)
    return -picked.mean()
