"""The heavy ops' public functions (``F.conv2d``, ``F.max_pool2d``, ``F.relu``, ``F.batch_norm``,
``F.global_avg_pool2d``): each checks its arguments here, in one clear line, then the tier in force
computes (tiers.py): simple.py, the reading tier, or fast/, the speed tier (same ops, same Function
interface, tested equal). functional.py imports them, so they are called as ``F.conv2d`` etc.
"""
from . import tiers
from .functional import _check_same_dtype, _pair
from .tensor import Tensor


def conv2d(x, w, b=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every framework) of x (N, C, H, W) with w (O, C, kh, kw)."""
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
    return tiers.in_force().conv2d(x, w, b, stride, padding)


def conv2d_relu(x, w, b=None, stride=1, padding=0):
    """relu(conv2d(...)); the fast tier runs the two as one op (fast/conv.py: relu_of)."""
    return relu(conv2d(x, w, b, stride, padding))


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
    running statistics (a per-channel affine, which the fast tier folds into the convolution before it
    when nothing needs a gradient but the input).
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

