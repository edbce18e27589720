"""The ops: each a Function with its forward and, right below, its backward.

Conventions: arrays in, arrays out (the Tensor plumbing is in ``Function.apply``); ``backward``
returns one gradient per positional input, None where an input needs none
(``ctx.needs_input_grad``). Shapes are in the comments. The heavy ops (conv2d, max_pool2d, relu)
call the kernels of the array's device (fast/cpu_kernels.py or fast/gpu_kernels.py); everything else is
written once for NumPy and CuPy through ``xp``.
"""
from functools import partial

import numpy as np

from . import relu_rules
from .fast import winograd
from .backend import check_same_device, get_array_module, scratch
from .fast import for_array as kernels_for
from .fast.plan import chunk_budget
from .tensor import Function, Tensor


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# elementwise arithmetic (with NumPy broadcasting)
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# matmul, reductions, shape changes, indexing
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# network ops
# ------------------------------------------------------------------------------------------------
class Linear(Function):
    """out (N, out) = x (N, in) @ w.T (in, out) + b (out,)."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        out = x @ w.T
        if b is not None:
            out += b
        return out

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        dx = g @ w if ctx.needs_input_grad[0] else None                  # (N, in)
        dw = g.T @ x if ctx.needs_input_grad[1] else None                # (out, in)
        db = g.sum(axis=0) if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2] else None
        return dx, dw, db


def linear(x, w, b=None):
    """Fully connected layer; ``w`` is (out, in) as in the weight files."""
    if x.ndim != 2:
        raise ValueError(f"linear: input must be 2-D (N, in), got shape {x.shape}")
    if w.ndim != 2 or w.shape[1] != x.shape[1]:
        raise ValueError(f"linear: input has {x.shape[1]} features, weight {tuple(w.shape)} expects "
                         f"{w.shape[1] if w.ndim == 2 else '?'}")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"linear: bias has shape {tuple(b.shape)}, expected ({w.shape[0]},)")
    _check_same_dtype("linear", x, w, b)
    return Linear.apply(x, w, b) if b is not None else Linear.apply(x, w)


#: elements of the patch matrix, or of the GEMM's output if larger, of one chunk (float32: 16 MB).
#: Larger chunks mean fewer, larger GEMMs; smaller ones bound memory (VGG16's conv1_2 alone needs 29M
#: for one 224x224 image).
COLS_BUDGET = 2**22

#: when the weights need a gradient (training), the forward keeps its patch matrices for the backward
#: if they hold at most this many elements in all (float32: 256 MB); otherwise the backward redoes them.
KEEP_COLS_LIMIT = 64 * 2**20


def _chunks(n_images, k, oh, ow, budget=None):
    """The chunks (n0, n1, oy0, oy1) whose arrays of k rows (patch matrices, GEMM outputs) fit the
    budget (default COLS_BUDGET; a GPU's: fast/plan.py): several whole images when one fits, else
    bands of output rows of one image (at least one row each)."""
    budget = budget or COLS_BUDGET
    if k * oh * ow <= budget:
        nb = budget // (k * oh * ow)
        return [(n0, min(n0 + nb, n_images), 0, oh) for n0 in range(0, n_images, nb)]
    rows = max(1, budget // (k * ow))
    return [(n, n + 1, oy0, min(oy0 + rows, oh)) for n in range(n_images) for oy0 in range(0, oh, rows)]


#: 3x3 stride-1 convolutions whose weights need no gradient (inference, saliency, class models) go by
#: Winograd F(2x2, 3x3) (winograd.py) on the CPU when both channel counts are at least this. With
#: fewer channels its 16 GEMMs, each summing over C terms, run too slowly to pay for the transforms
#: (VGG16's 64-channel layers were no faster; 128 beat 64 and 256 on the benchmark). 0: never.
WINOGRAD_MIN_CHANNELS = 128


def _winograd_applies(x, w, stride, padding):
    return (WINOGRAD_MIN_CHANNELS > 0 and get_array_module(x) is np and w.shape[2:] == (3, 3)
            and stride == (1, 1) and max(padding) <= 2 and min(w.shape[:2]) >= WINOGRAD_MIN_CHANNELS)


class Conv2d(Function):
    """2-D cross-correlation by im2col + GEMM, a chunk of images at a time (bounded memory).

    out[n, o, y, x] = b[o] + sum_{c,i,j} w[o, c, i, j] * x[n, c, y*sh + i - ph, x*sw + j - pw]

    For a chunk of nb images (or a band of rows of one image), with P its output pixels per image and
    K = C*kh*kw:
        cols (K, nb*P) = im2col(x)     y (O, nb*P) = W (O, K) @ cols     out[n, o, p] = y[o, n*P + p] + b[o]
    and backwards, with g packed the same way as y:
        dW += g (O, nb*P) @ cols.T      dcols (K, nb*P) = W.T @ g      dx = col2im(dcols)

    With ``relu=True`` the ReLU is fused into the unpacking pass, and backwards its rule (the one in
    force, exactly as the separate ReLU op would apply it) into the pass that packs g. Under
    ``relu_rules.observe`` it is applied apart instead, so that the observers see the ReLU's arrays.

    When the weights need no gradient and the convolution is 3x3, stride 1, with enough channels
    (``_winograd_applies``), forward and input gradient go by Winograd F(2x2, 3x3) instead (winograd.py).
    """

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), relu=False):
        xp, K = get_array_module(x), kernels_for(x)
        x = xp.ascontiguousarray(x)
        N, C, H, W = x.shape
        O, _, kh, kw = w.shape
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
        P, Kc = oh * ow, C * kh * kw
        geometry = (kh, kw, sh, sw, ph, pw)
        bias = b if b is not None else xp.zeros(O, x.dtype)
        ctx.geometry, ctx.out_size, ctx.relu, ctx.cols = geometry, (oh, ow), relu, []
        ctx.winograd = not ctx.needs_input_grad[1] and _winograd_applies(x, w, stride, padding)
        if ctx.winograd:
            out = winograd.conv(x, winograd.filters(w), bias, padding, relu, partial(_chunks, N))
            ctx.save_for_backward(x, w, out if relu else None)
            return out
        w2 = xp.ascontiguousarray(w).reshape(O, Kc)                        # (O, K)
        out = xp.empty((N, O, P), x.dtype)                                 # (N, O, P)
        keep = ctx.needs_input_grad[1] and N * Kc * P <= KEEP_COLS_LIMIT
        for n0, n1, oy0, oy1 in _chunks(N, max(Kc, O), oh, ow, chunk_budget(xp)):   # cols, y in budget
            width = (n1 - n0) * (oy1 - oy0) * ow                           # nb*P (or a band's pixels)
            cols = xp.empty((Kc, width), x.dtype) if keep else scratch(xp, "cols", (Kc, width), x.dtype)
            K.im2col(x, n0, oy0, *geometry, oy1 - oy0, ow, cols)          # (K, nb*P)
            if keep:
                ctx.cols.append(cols)
            if n1 - n0 == 1 and oy1 - oy0 == oh:                           # one whole image: GEMM into out
                xp.matmul(w2, cols, out=out[n0])                           # (O, P)
                K.gemm_out_to_nchw(out[n0], bias, relu, 0, 0, out[n0:n1])  # bias (+ ReLU) in place
            else:                                                          # (O, nb*P) -> out[n0:n1, :, band]
                y = xp.matmul(w2, cols, out=scratch(xp, "gemm", (O, width), x.dtype))
                K.gemm_out_to_nchw(y, bias, relu, n0, oy0 * ow, out)
        out = out.reshape(N, O, oh, ow)                                    # (N, O, oh, ow)
        ctx.save_for_backward(x, w, out if relu else None)
        return out

    @staticmethod
    def backward(ctx, g):
        x, w, y = ctx.saved
        xp, K = get_array_module(x), kernels_for(x)
        kh, kw, sh, sw, ph, pw = ctx.geometry
        N, C = x.shape[:2]
        oh, ow = ctx.out_size
        O = w.shape[0]
        P, Kc = oh * ow, C * kh * kw
        if ctx.winograd:
            # Only dx (the weights need no gradient): the convolution of g with the filters turned by
            # 180 degrees, input and output channels swapped, padding 2 - p; Winograd again.
            if ctx.relu:
                g = _relu_backward(y, g)
            U = winograd.filters(w, flip=True).transpose(0, 2, 1)         # (16, C, O)
            dx = winograd.conv(xp.ascontiguousarray(g), U, xp.zeros(C, x.dtype), (2 - ph, 2 - pw), False,
                               partial(_chunks, N)) if ctx.needs_input_grad[0] else None
            need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
            return dx, None, (g.sum(axis=(0, 2, 3)) if need_b else None)
        rule = K.NO_RELU
        if ctx.relu and relu_rules._observers:                             # observers want the ReLU's own
            g = _relu_backward(y, g)                                       # arrays: go through it apart
        elif ctx.relu:                                                     # else fused into the packing
            rule = _rule_code()
        g = xp.ascontiguousarray(g).reshape(N, O, P)                       # (N, O, P)
        y = y.reshape(N, O, P) if rule != K.NO_RELU else g
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        w2 = xp.ascontiguousarray(w).reshape(O, Kc)                        # (O, K)
        dx = xp.zeros_like(x) if need_x else None
        dw2 = xp.zeros_like(w2) if need_w else None
        db = xp.zeros(O, g.dtype) if need_b else None
        for chunk, (n0, n1, oy0, oy1) in enumerate(_chunks(N, max(Kc, O), oh, ow, chunk_budget(xp))):
            width = (n1 - n0) * (oy1 - oy0) * ow                           # nb*P (or a band's pixels)
            if n1 - n0 == 1 and rule == K.NO_RELU:
                gp = g[n0, :, oy0 * ow:oy1 * ow]                           # (O, P): a view, already packed
            else:                                                          # (O, nb*P), packed like y,
                gp = scratch(xp, "gemm", (O, width), g.dtype)              # through the ReLU's rule
                K.nchw_to_gemm(g, y, rule, n0, oy0 * ow, gp)
            if need_b:
                db += gp.sum(axis=1)
            if need_w:
                if ctx.cols:
                    cols = ctx.cols[chunk]                                 # kept by the forward
                else:
                    cols = scratch(xp, "cols", (Kc, width), x.dtype)       # (K, nb*P)
                    K.im2col(x, n0, oy0, *ctx.geometry, oy1 - oy0, ow, cols)
                dw2 += gp @ cols.T                                         # (O, nb*P) @ (nb*P, K)
            if need_x:                                                     # (cols, if scratch, is used up)
                dcols = xp.matmul(w2.T, gp, out=scratch(xp, "cols", (Kc, width), x.dtype))   # (K, nb*P)
                K.col2im(dcols, n0, oy0, *ctx.geometry, oy1 - oy0, ow, dx)  # (K, nb*P) -> dx[n0:n1]
        ctx.cols = []                                                      # free them
        return dx, (dw2.reshape(w.shape) if need_w else None), db


def conv2d(x, w, b=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every framework) of x (N, C, H, W) with w (O, C, kh, kw)."""
    return _conv2d(x, w, b, stride, padding, relu=False)


def conv2d_relu(x, w, b=None, stride=1, padding=0):
    """relu(conv2d(...)) as one fused op (the ReLU costs no pass of its own)."""
    return _conv2d(x, w, b, stride, padding, relu=True)


def _conv2d(x, w, b, stride, padding, relu):
    stride, padding = _pair(stride, "stride", "conv2d"), _pair(padding, "padding", "conv2d")
    if x.ndim != 4:
        raise ValueError(f"conv2d: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if w.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out, in, kh, kw), got shape {tuple(w.shape)}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels, weight expects {w.shape[1]}")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"conv2d: bias has shape {tuple(b.shape)}, expected ({w.shape[0]},)")
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    H, W = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if H < w.shape[2] or W < w.shape[3]:
        raise ValueError(f"conv2d: kernel {tuple(w.shape[2:])} is larger than the padded input ({H}, {W})")
    _check_same_dtype("conv2d", x, w, b)
    params = dict(stride=stride, padding=padding, relu=relu)
    return Conv2d.apply(x, w, b, **params) if b is not None else Conv2d.apply(x, w, **params)


class MaxPool2d(Function):
    """out[n, c, y, x] = max_{i<kh, j<kw} x[n, c, y*sh + i, x*sw + j]; the backward uses the switches."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride):
        xp, K = get_array_module(x), kernels_for(x)
        x = xp.ascontiguousarray(x)
        (kh, kw), (sh, sw) = kernel_size, stride
        N, C, H, W = x.shape
        oh, ow = (H - kh) // sh + 1, (W - kw) // sw + 1
        out = xp.empty((N, C, oh, ow), x.dtype)
        switches = xp.empty((N, C, oh, ow), xp.int32)                    # flat index y*W + x
        K.maxpool_forward(x, kh, kw, sh, sw, out, switches)
        ctx.save_for_backward(switches)
        ctx.shape, ctx.window = x.shape, (kh, kw, sh, sw)
        return out

    @staticmethod
    def backward(ctx, g):
        xp, K = get_array_module(g), kernels_for(g)
        (switches,) = ctx.saved
        dx = xp.zeros(ctx.shape, g.dtype)
        K.maxpool_backward(xp.ascontiguousarray(g), switches, *ctx.window, dx)
        return dx, None, None


def max_pool2d(x, kernel_size, stride=None):
    """Max pooling without padding; ``stride`` defaults to ``kernel_size`` (non-overlapping)."""
    kernel_size = _pair(kernel_size, "kernel_size", "max_pool2d")
    stride = kernel_size if stride is None else _pair(stride, "stride", "max_pool2d")
    if x.ndim != 4:
        raise ValueError(f"max_pool2d: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if min(kernel_size) < 1 or min(stride) < 1:
        raise ValueError(f"max_pool2d: kernel_size and stride must be >= 1, got {kernel_size}, {stride}")
    if x.shape[2] < kernel_size[0] or x.shape[3] < kernel_size[1]:
        raise ValueError(f"max_pool2d: window {kernel_size} is larger than the input {tuple(x.shape[2:])}")
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride)


def _rule_code():
    """The kernels' code for the ReLU backward rule in force: its index in relu_rules.RULES."""
    return relu_rules.RULES.index(relu_rules.current_rule())


def _relu_backward(y, g):
    """Back through a ReLU whose output was y, with the rule in force (relu_rules.py)."""
    xp, K = get_array_module(g), kernels_for(g)
    g = xp.ascontiguousarray(g)
    dx = xp.empty_like(g)
    K.relu_backward(y.ravel(), g.ravel(), _rule_code(), dx.ravel())
    for observer in relu_rules._observers:
        observer(y > 0, g, dx)
    return dx


class ReLU(Function):
    """out = max(x, 0); backward by the rule in force: gradient, deconvnet or guided (relu_rules.py)."""

    @staticmethod
    def forward(ctx, x):
        xp, K = get_array_module(x), kernels_for(x)
        x = xp.ascontiguousarray(x)
        out = xp.empty_like(x)
        K.relu_forward(x.ravel(), out.ravel())
        ctx.save_for_backward(out)                                        # [out > 0] = [x > 0]
        return out

    @staticmethod
    def backward(ctx, g):
        return _relu_backward(ctx.saved[0], g)


def relu(x):
    return ReLU.apply(x)


class Dropout(Function):
    """Inverted dropout: keep each unit with probability 1 - p and scale it by 1 / (1 - p)."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0], None


_rng = np.random.default_rng()
_gpu_rngs = {}                        # GPU id -> CuPy generator, seeded from _rng


def manual_seed(seed):
    """Seed minigrad's random numbers (dropout masks, initialisation in nn)."""
    global _rng
    _rng = np.random.default_rng(seed)
    _gpu_rngs.clear()


def _rng_on(xp):
    """A generator that draws on xp's device (no mask crosses from the host)."""
    if xp is np:
        return _rng
    device = xp.cuda.runtime.getDevice()
    if device not in _gpu_rngs:
        _gpu_rngs[device] = xp.random.default_rng(int(_rng.integers(2**63)))
    return _gpu_rngs[device]


def rng():
    return _rng


def dropout(x, p=0.5, training=True):
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    xp = x.xp
    keep = _rng_on(xp).random(x.shape, dtype=np.float32) >= p
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(x, mask)


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
    return exp(log_softmax(x, axis))


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
