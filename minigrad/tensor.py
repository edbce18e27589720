"""Tensor and reverse-mode autodiff.

A Tensor wraps an array (``.data``, NumPy or CuPy) and, when it was made by an op on tensors that
require gradients, remembers how: the op (a :class:`Function`), its context (what the op saved for
its backward), and its inputs. ``backward()`` walks that graph from the output in reverse
topological order and calls each op's ``backward``, accumulating gradients (``+=``) so that a tensor
used twice receives both contributions. Only leaves (tensors made by the user with
``requires_grad=True``) keep ``.grad``; intermediate gradients are freed as soon as they are used,
unless ``retain_grad()`` was called.

The ops themselves live in ``functional.py``, which also gives the Tensor its operators (``+``, ``@``, ...).
"""
import contextlib

import numpy as np

from .backend import DEFAULT_DTYPE, get_array_module, to_numpy

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Inside this block ops record no graph (cheaper forward passes, e.g. for evaluation)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


class Context:
    """What an op's forward hands to its backward (cf. PyTorch's ctx)."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad   # one bool per positional input
        self.saved = ()

    def save_for_backward(self, *arrays):
        self.saved = arrays


class Function:
    """An op: ``forward(ctx, *arrays, **params) -> array`` and ``backward(ctx, grad) -> grads``.

    ``backward`` returns one gradient (or None) per positional input of ``forward``.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_out):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the forward on the inputs' arrays now and wrap the result; remember the op, its context
        and its inputs when any input needs a gradient (and ``no_grad`` is off)."""
        needs = tuple(_grad_enabled and isinstance(t, Tensor) and t.requires_grad for t in inputs)
        ctx = Context(needs)
        arrays = [t.data if isinstance(t, Tensor) else t for t in inputs]
        out = Tensor(cls.forward(ctx, *arrays, **params), requires_grad=any(needs))
        if out.requires_grad:
            out._op, out._ctx, out._inputs = cls, ctx, inputs
        return out


def _as_array(data):
    """Arrays keep their dtype; Python scalars and lists become the default float32."""
    if isinstance(data, np.generic):                    # a NumPy scalar: keep its dtype, make it an array
        return np.asarray(data)
    if hasattr(data, "__array_interface__") or hasattr(data, "__cuda_array_interface__"):
        return data
    return np.asarray(data, dtype=DEFAULT_DTYPE)


class Tensor:
    """An array with an optional gradient and the recipe that made it."""

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        self.data = _as_array(data)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._op = self._ctx = None
        self._inputs = ()
        self._retain = False

    # ---- properties -------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    xp = property(lambda self: get_array_module(self.data))

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{grad})"

    def numpy(self):
        """The data as a NumPy array (copied from the GPU if needed)."""
        return to_numpy(self.data)

    def item(self):
        return self.data.item()

    def detach(self):
        return Tensor(self.data)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after ``backward()``."""
        self._retain = True
        return self

    def zero_grad(self):
        self.grad = None

    # ---- autodiff ---------------------------------------------------------------------------
    def backward(self, grad=None):
        """Back-propagate from this tensor; ``grad`` defaults to 1 for a scalar."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input did, or no_grad was on)")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward: output has shape {self.shape}; pass grad= of that shape "
                                   "for a non-scalar output")
            grad = self.xp.ones_like(self.data)
        grad = grad.data if isinstance(grad, Tensor) else _as_array(grad)
        if grad.dtype != self.dtype and grad.dtype.kind == "f":
            grad = grad.astype(self.dtype)                  # a float64 seed must not turn float32 into float64
        if grad.shape != self.shape:
            raise ValueError(f"backward: grad has shape {grad.shape}, output has shape {self.shape}")

        # Reverse topological order by an iterative depth-first search (VGG graphs are deep).
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                for parent in node._inputs:
                    if isinstance(parent, Tensor) and parent.requires_grad and id(parent) not in seen:
                        stack.append((parent, False))

        grads = {id(self): grad}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._op is None or node._retain:                       # a leaf, or asked to keep it
                node.grad = g if node.grad is None else node.grad + g
            if node._op is None:
                continue
            in_grads = node._op.backward(node._ctx, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for parent, pg in zip(node._inputs, in_grads):
                if pg is None or not (isinstance(parent, Tensor) and parent.requires_grad):
                    continue
                if id(parent) in grads:
                    grads[id(parent)] = grads[id(parent)] + pg          # used twice: both contributions
                else:
                    grads[id(parent)] = pg

    # ---- operators --------------------------------------------------------------------------
    # x + y, x * y, x @ w, x[i], x.sum(), x.reshape(...), x.relu(), ...: the functions of
    # functional.py, which attaches them to this class at its end. The ops' modules import Tensor and
    # Function from here; this module imports none of them, so the engine has no import circle.
