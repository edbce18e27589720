"""Gradient checking by central differences, in float64.

For ``out = fn(*inputs)`` and a fixed random weighting ``r`` of the output, the scalar
``L = sum(r * out)`` has the gradient ``dL/dx`` that ``out.backward(r)`` computes. We compare it with

    (L(x + eps e_k) - L(x - eps e_k)) / (2 eps)        for every element k   (small inputs), or
    (L(x + eps d) - L(x - eps d)) / (2 eps)  vs  <dL/dx, d>   along random directions d (large ones).

Central differences have error O(eps^2) from the Taylor remainder plus O(u / eps) from rounding
(u = 1.1e-16 in float64), so eps = 1e-6 gives about 1e-10 relative: tolerances of 1e-6 are tight
and still never flaky. float32 would give about 1e-3: we refuse it.
"""
import numpy as np

from .backend import to_numpy
from .tensor import Tensor


class GradcheckError(AssertionError):
    pass


def gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-6, max_elements=4096, directions=8, seed=0):
    """Check every input that requires grad; True on success, GradcheckError naming the worst element.

    ``inputs`` are float64 Tensors; ``fn(*inputs)`` returns a Tensor of any shape.
    """
    inputs = list(inputs)
    for t in inputs:
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 (finite differences in float32 are "
                            f"too coarse), got {t.dtype}")
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    xp = out.xp
    r = xp.asarray(rng.standard_normal(out.shape))            # float64 output weighting

    def loss():
        return float((fn(*inputs).data * r).sum())

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    out.backward(r)

    for k, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = t.grad if t.grad is not None else xp.zeros_like(t.data)
        if not t.data.flags.c_contiguous:
            raise TypeError(f"gradcheck: input {k} is not contiguous; pass a contiguous copy")
        flat = t.data.reshape(-1)                              # a view: perturb in place
        if t.size <= max_elements:
            numeric = np.empty(t.size)
            for i in range(t.size):
                old = float(flat[i])
                flat[i] = old + eps
                plus = loss()
                flat[i] = old - eps
                minus = loss()
                flat[i] = old
                numeric[i] = (plus - minus) / (2 * eps)
            received = to_numpy(analytic).reshape(-1)
            expected = numeric
            where = "element"
        else:
            received, expected = np.empty(directions), np.empty(directions)
            original = t.data.copy()
            for i in range(directions):
                d = xp.asarray(rng.standard_normal(t.shape))
                t.data[...] = original + eps * d
                plus = loss()
                t.data[...] = original - eps * d
                minus = loss()
                t.data[...] = original
                expected[i] = (plus - minus) / (2 * eps)
                received[i] = float((analytic * d).sum())
            where = "direction"
        err = np.abs(received - expected)
        bound = atol + rtol * np.abs(expected)
        worst = int(np.argmax(err - bound))
        if err[worst] > bound[worst]:
            index = np.unravel_index(worst, t.shape) if where == "element" else worst
            raise GradcheckError(
                f"gradcheck: input {k} (shape {tuple(t.shape)}), {where} {index}: received "
                f"{received[worst]:.10g}, expected {expected[worst]:.10g} (|diff| {err[worst]:.3g} > "
                f"atol {atol:g} + rtol {rtol:g} * |expected|)")
    return True
