"""The fast tier's fully connected layer: see simple.py's Linear for the maths.

Optimisation made: the three GEMMs are split between the engine's threads (parallel.py: ``matmul``,
rows or columns one block a thread), since the BLAS runs on one thread while the engine's own do.
"""
from ..tensor import Function
from .parallel import matmul


class Linear(Function):
    """out (N, out) = x (N, in) @ w.T (in, out) + b (out,)."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        out = matmul(x, w.T)
        if b is not None:
            out += b
        return out

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        dx = matmul(g, w) if ctx.needs_input_grad[0] else None              # (N, in)
        dw = matmul(g.T, x) if ctx.needs_input_grad[1] else None            # (out, in)
        db = g.sum(axis=0) if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2] else None
        return dx, dw, db


def linear(x, w, b=None):
    return Linear.apply(x, w, b) if b is not None else Linear.apply(x, w)
