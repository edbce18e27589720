"""The ops: each a Function with its forward and, right below, its backward.

Conventions: arrays in, arrays out (the Tensor plumbing is in ``Function.apply``, which runs the
forward at once); ``backward`` returns one gradient per positional input, None where an input needs
none (``ctx.needs_input_grad``). Shapes are in the comments. Everything here is written once for NumPy
and CuPy through ``xp``. The heavy ops (conv2d, linear, max_pool2d, relu, batch_norm,
global_avg_pool2d) are imported from heavy_ops.py, which checks their arguments and hands over to the
tier in force (tiers.py): simple.py, the plain array code to read, or fast/, the compiled kernels. At
its end this module gives the Tensor its operators (``x + y`` is ``add(x, y)``, ``x @ w`` is ``matmul``).
"""
import numpy as np

from .backend import check_same_device, get_array_module
from .randomness import Dropout, dropout, manual_seed, rng  # noqa: F401  (F.dropout, F.manual_seed)
from .tensor import Function, Tensor


# ---- helpers ------------------------------------------------------------------------------------
def _pair(v, name, op):
    v = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) for a in v):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    return int(v[0]), int(v[1])


def _unbroadcast(g, shape):
    """Sum a gradient over the axes that broadcasting added or stretched, back to ``shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _operands(op, a, b):
    """Lift a constant operand to an array of the tensor operand's dtype (no float64 leaks)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: at least one operand must be a Tensor")
    check_same_device(op, a, b)
    ref = a if isinstance(a, Tensor) else b
    xp = ref.xp

    def lift(v):
        if isinstance(v, Tensor):
            return v
        dtype = ref.dtype if ref.dtype.kind == "f" else None
        return xp.asarray(v, dtype=dtype)

    a, b = lift(a), lift(b)
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype != b.dtype \
            and a.dtype.kind == b.dtype.kind == "f":
        raise TypeError(f"{op}: operands are {a.dtype} and {b.dtype}; convert one explicitly")
    return a, b


def _check_same_dtype(op, *arrays):
    check_same_device(op, *arrays)
    dtypes = {a.dtype for a in arrays if a is not None}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: mixed dtypes {sorted(map(str, dtypes))}; convert explicitly")


# ---- elementwise arithmetic (with NumPy broadcasting) -------------------------------------------
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx, g):
        return _unbroadcast(g, ctx.shapes[0]), _unbroadcast(g, ctx.shapes[1])


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        da = _unbroadcast(g * b, a.shape) if ctx.needs_input_grad[0] else None
        db = _unbroadcast(g * a, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        da = _unbroadcast(g / b, a.shape) if ctx.needs_input_grad[0] else None
        db = _unbroadcast(-g * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """a ** p for a constant exponent p."""

    @staticmethod
    def forward(ctx, a, p):
        ctx.save_for_backward(a)
        ctx.p = p
        return a ** p

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * ctx.p * a ** (ctx.p - 1), None


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = get_array_module(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved[0]


def add(a, b): return Add.apply(*_operands("add", a, b))
def mul(a, b): return Mul.apply(*_operands("mul", a, b))
def div(a, b): return Div.apply(*_operands("div", a, b))
def sub(a, b): a, b = _operands("sub", a, b); return Add.apply(a, neg(b) if isinstance(b, Tensor) else -b)
def neg(a): return Neg.apply(a)
def exp(a): return Exp.apply(a)
def log(a): return Log.apply(a)


def pow(a, p):
    if not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"pow: the exponent must be a number, got {type(p).__name__}")
    p = int(p) if float(p).is_integer() else float(p)    # a Python number: np.float64 would promote float32
    return Pow.apply(a, p)


class Cast(Function):
    """a in another float dtype (float32 -> float64 to compute a loss in float64, say); backwards the
    gradient is rounded back to a's dtype."""

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


def astype(a, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"astype: a float dtype is needed (the gradient flows through it), got {dtype}")
    return Cast.apply(a, dtype=dtype)


# ---- matmul, reductions, shape changes, indexing ------------------------------------------------
class MatMul(Function):
    """a @ b for 2-D (or batched) operands."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        da = _unbroadcast(g @ b.swapaxes(-1, -2), a.shape) if ctx.needs_input_grad[0] else None
        db = _unbroadcast(a.swapaxes(-1, -2) @ g, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def matmul(a, b):
    a, b = _operands("matmul", a, b)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not chain (need (..., n, k) @ (..., k, m))")
    return MatMul.apply(a, b)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return a.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        if not ctx.keepdims and ctx.axis is not None:
            axes = (ctx.axis,) if isinstance(ctx.axis, int) else ctx.axis
            g = xp.expand_dims(g, tuple(ax % len(ctx.shape) for ax in axes))
        return xp.broadcast_to(g, ctx.shape).copy()


def sum(a, axis=None, keepdims=False):  # noqa: A001 (mirrors numpy)
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    axes = range(a.ndim) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    count = int(np.prod([a.shape[ax] for ax in axes]))
    return Sum.apply(a, axis=axis, keepdims=keepdims) / count


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


def reshape(a, shape):
    return Reshape.apply(a, tuple(shape))


def flatten(a):
    """(N, ...) -> (N, -1)."""
    return Reshape.apply(a, (a.shape[0], -1))


class Transpose(Function):
    @staticmethod
    def forward(ctx, a, axes=None):
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        if ctx.axes is None:
            return g.transpose()
        return g.transpose(np.argsort(ctx.axes))


def transpose(a, axes=None):
    if axes is not None:
        axes = tuple(int(ax) % a.ndim for ax in axes)    # negative axes: the backward inverts a permutation
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of {a.ndim} axes")
    return Transpose.apply(a, axes=axes)


class GetItem(Function):
    """a[index]; the backward scatter-adds, so repeated indices receive all their contributions."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.index = a.shape, index
        return a[index]

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        da = xp.zeros(ctx.shape, g.dtype)
        xp.add.at(da, ctx.index, g)
        return da, None


def getitem(a, index):
    """Index a tensor like its array: ``logits[:, c]``, ``logits[xp.arange(N), targets]``."""
    def raw(i):
        return i.data if isinstance(i, Tensor) else i
    index = tuple(raw(i) for i in index) if isinstance(index, tuple) else raw(index)
    return GetItem.apply(a, index)


# ---- the Tensor's operators ----------------------------------------------------------------------
# tensor.py imports none of the ops' modules (they import it), so the operators are attached here.
def _swapped(op):
    return lambda self, other: op(other, self)


for _name, _op in {"__add__": add, "__radd__": _swapped(add), "__sub__": sub, "__rsub__": _swapped(sub),
                   "__mul__": mul, "__rmul__": _swapped(mul), "__truediv__": div, "__rtruediv__": _swapped(div),
                   "__neg__": neg, "__pow__": pow, "__matmul__": matmul, "__getitem__": getitem,
                   "sum": sum, "mean": mean, "flatten": flatten, "exp": exp, "log": log, "astype": astype}.items():
    setattr(Tensor, _name, _op)
Tensor.reshape = lambda self, *shape: reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
Tensor.transpose = lambda self, *axes: transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))
Tensor.T = property(lambda self: transpose(self, None))


# The heavy ops (conv2d, linear, max_pool2d, relu, batch_norm, global_avg_pool2d): heavy_ops.py checks
# their arguments and hands them to the tier in force (tiers.py).
from .heavy_ops import batch_norm, conv2d, global_avg_pool2d, linear, max_pool2d, relu  # noqa: E402,F401
from .losses import cross_entropy, log_softmax, softmax  # noqa: E402,F401  (they use the ops above)

Tensor.relu = relu
