"""The heavy ops' public functions (``F.conv2d``, ``F.linear``, ``F.max_pool2d``, ``F.relu``,
``F.batch_norm``, ``F.global_avg_pool2d``): each checks its arguments here, in one clear line, then
the tier in force computes (tiers.py): simple.py, the reading tier, or fast/, the speed tier (same
ops, same Function interface, tested equal). functional.py imports them, so they are called as ``F.conv2d`` etc.
"""
from . import tiers
from .functional import _check_same_dtype, _pair
from .tensor import Tensor, is_grad_enabled


def conv2d(x, w, b=None, stride=1, padding=0, *, scale=None, residual=None, relu=False):
    """2-D convolution (cross-correlation, as in every framework) of x (N, C, H, W) with w (O, C, kh, kw),
    and what a network applies right after it, given here so that a tier can run them as one op:

        out = relu(scale[o] * conv(x, w)[n, o] + b[o] + residual[n, o])

    ``scale`` (O,): a batch norm folded in for inference (models/blocks.py: ``fold_bn``), an array (or a
    Tensor) that needs no gradient; so must w and b then. ``residual``: a Tensor of the output's shape (a
    residual block's shortcut). ``relu``: apply a ReLU (its backward by the rule in force). The simple
    tier composes its own ops (simple.py: ``conv2d``); the fast one runs them fused (fast/conv.py).
    """
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
    if scale is not None:
        if isinstance(scale, Tensor) and scale.requires_grad and is_grad_enabled():
            raise ValueError("conv2d: scale must need no gradient (a batch norm folded for inference)")
        scale = scale.data if isinstance(scale, Tensor) else scale
        if tuple(scale.shape) != (w.shape[0],):
            raise ValueError(f"conv2d: scale has shape {tuple(scale.shape)}, expected ({w.shape[0]},)")
        if is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in (w, b)):
            raise ValueError("conv2d: scale= folds a batch norm for inference; the weights and bias must "
                             "need no gradient (requires_grad False, or under no_grad)")
    if residual is not None:
        out_shape = (x.shape[0], w.shape[0], (H - w.shape[2]) // stride[0] + 1, (W - w.shape[3]) // stride[1] + 1)
        if not isinstance(residual, Tensor) or tuple(residual.shape) != out_shape:
            raise ValueError(f"conv2d: residual must be a Tensor of the output's shape {out_shape}, got "
                             f"{tuple(residual.shape) if hasattr(residual, 'shape') else type(residual).__name__}")
    _check_same_dtype("conv2d", x, w, b, scale, residual)
    return tiers.in_force().conv2d(x, w, b, stride, padding, scale=scale, residual=residual, relu=bool(relu))


def linear(x, w, b=None):
    """Fully connected layer: out (N, out) = x (N, in) @ w.T + b; ``w`` is (out, in) as in the weight files."""
    if x.ndim != 2:
        raise ValueError(f"linear: input must be 2-D (N, in), got shape {x.shape}")
    if w.ndim != 2 or w.shape[1] != x.shape[1]:
        raise ValueError(f"linear: input has {x.shape[1]} features, weight {tuple(w.shape)} expects "
                         f"{w.shape[1] if w.ndim == 2 else '?'}")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"linear: bias has shape {tuple(b.shape)}, expected ({w.shape[0]},)")
    _check_same_dtype("linear", x, w, b)
    return tiers.in_force().linear(x, w, b)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling; ``stride`` defaults to ``kernel_size`` (non-overlapping). ``padding`` pads with
    -inf (a padded cell never wins, PyTorch's rule), at most half the window; the output has
    floor((H + 2p - k) / s) + 1 rows."""
    kernel_size = _pair(kernel_size, "kernel_size", "max_pool2d")
    stride = kernel_size if stride is None else _pair(stride, "stride", "max_pool2d")
    padding = _pair(padding, "padding", "max_pool2d")
    if x.ndim != 4:
        raise ValueError(f"max_pool2d: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if min(kernel_size) < 1 or min(stride) < 1:
        raise ValueError(f"max_pool2d: kernel_size and stride must be >= 1, got {kernel_size}, {stride}")
    if min(padding) < 0 or padding[0] > kernel_size[0] // 2 or padding[1] > kernel_size[1] // 2:
        raise ValueError(f"max_pool2d: padding must be >= 0 and at most half the window, got {padding} "
                         f"for window {kernel_size}")
    H, W = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if H < kernel_size[0] or W < kernel_size[1]:
        raise ValueError(f"max_pool2d: window {kernel_size} is larger than the input {tuple(x.shape[2:])}"
                         + (f" padded by {padding}" if max(padding) else ""))
    return tiers.in_force().max_pool2d(x, kernel_size, stride, padding)


def relu(x):
    """max(x, 0); its backward follows the ReLU rule in force (relu_rules.py)."""
    return tiers.in_force().relu(x)


def global_avg_pool2d(x):
    """(N, C, H, W) -> (N, C): the mean of each image plane."""
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool2d: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    return tiers.in_force().global_avg_pool2d(x)


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch normalisation of x (N, C, H, W) per channel (simple.py: BatchNorm has the maths).

    weight, bias: Tensors (C,) (gamma and beta). running_mean, running_var: arrays (C,) of x's dtype,
    on x's device. training=True normalises with the batch's mean and biased variance and updates the
    running statistics IN PLACE, ``running = (1 - momentum) * running + momentum * batch`` (the
    variance's from the unbiased batch variance, as PyTorch); training=False normalises with the
    running statistics (a per-channel affine, which a network may fold into the convolution before it:
    ``conv2d(..., scale=)``, models/blocks.py).
    """
    running_mean, running_var = (r.data if isinstance(r, Tensor) else r for r in (running_mean, running_var))
    if x.ndim != 4:
        raise ValueError(f"batch_norm: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    C = x.shape[1]
    for name, v in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        if v is None or tuple(v.shape) != (C,):
            raise ValueError(f"batch_norm: {name} has shape {None if v is None else tuple(v.shape)}, "
                             f"expected ({C},) for an input of {C} channels")
    _check_same_dtype("batch_norm", x, weight, bias, running_mean, running_var)
    if training and x.size // C <= 1:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got input shape "
                         f"{tuple(x.shape)}")
    momentum, eps = float(momentum), float(eps)          # Python floats: np.float64 would promote float32
    if not 0 <= momentum <= 1 or not eps > 0:
        raise ValueError(f"batch_norm: momentum must be in [0, 1] and eps > 0, got {momentum}, {eps}")
    return tiers.in_force().batch_norm(x, weight, bias, running_mean, running_var, bool(training),
                                       momentum, eps)

