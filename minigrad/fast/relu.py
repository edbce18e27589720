"""The fast tier's ReLU: see simple.py's ReLU, which calls relu_rules' functions.

Optimisations made:
- forward and backward are compiled loops over the flat arrays (cpu_kernels.py, gpu_kernels.py),
  the backward told the rule in force by its code (``relu_rules.code``): one pass, no temporaries;
- a ReLU that a network asks for with its convolution (``F.conv2d(..., relu=True)``) runs inside it
  (conv.py): clamped in the pass that unpacks its GEMM, and its backward rule applied in the pass that
  packs the gradient, so it costs no pass of its own.
"""
from .. import relu_rules
from ..backend import get_array_module
from ..tensor import Function
from .kernels import for_array


def backward(y, g):
    """Back through a ReLU whose output was y, with the rule in force (relu_rules.py)."""
    xp, kernels = get_array_module(g), for_array(g)
    g = xp.ascontiguousarray(g)
    dx = xp.empty_like(g)
    kernels.relu_backward(y.ravel(), g.ravel(), relu_rules.code(), dx.ravel())
    if relu_rules._observers:
        relu_rules.notify(y > 0, g, dx)
    return dx


class ReLU(Function):
    """out = max(x, 0); backward by the rule in force: gradient, deconvnet or guided (relu_rules.py)."""

    @staticmethod
    def forward(ctx, x):
        xp, kernels = get_array_module(x), for_array(x)
        x = xp.ascontiguousarray(x)
        out = xp.empty_like(x)
        kernels.relu_forward(x.ravel(), out.ravel())
        ctx.save_for_backward(out)                                        # [out > 0] = [x > 0]
        return out

    @staticmethod
    def backward(ctx, g):
        return backward(ctx.saved[0], g)


def relu(x):
    return ReLU.apply(x)
