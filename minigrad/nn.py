"""Layers as Modules, in the PyTorch style: attributes that are Parameters or Modules register
themselves, in order, so ``named_parameters()`` reads ``conv1_1.weight``, ``fc8.bias``, ...

Initialisation is He et al. (2015), ``std = sqrt(2 / fan_in)``: plain VGG stacks without batch norm
do not train from smaller initialisations.
"""
import contextlib
import math
from collections import OrderedDict

import numpy as np

from . import functional as F
from .backend import DEFAULT_DTYPE, device_of, to_device
from .tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a learnable parameter of a Module (requires_grad=True)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._buffers:                            # a buffer stays one: its new array
            self._buffers[name] = value
            object.__setattr__(self, name, value)
            return
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix=""):
        for mod_name, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if p is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def register_buffer(self, name, array):
        """Keep an array that the module saves but does not learn (BatchNorm2d's running statistics):
        ``named_buffers()`` yields it, ``state_dict()`` holds it, ``load_state_dict()`` fills it,
        ``to()`` moves it. Read and assign it as an attribute, ``self.<name>``."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def named_buffers(self, prefix=""):
        """(name, array) of every buffer, as named_parameters: ``bn1.running_mean``, ..."""
        for mod_name, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def _named_state(self):
        """(name, Parameter or array) module by module, each module's parameters then its buffers
        (PyTorch's order of a state dict)."""
        for mod_name, m in self.named_modules():
            for kind in (m._parameters, m._buffers):
                for name, v in kind.items():
                    if v is not None:
                        yield (f"{mod_name}.{name}" if mod_name else name), m, name, v

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        for _, m in self.named_modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, flag=True):
        """Switch gradients of all parameters on or off (off: saliency needs only input gradients)."""
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def state_dict(self):
        """{name: array} of every parameter and buffer (the arrays themselves, not copies)."""
        return OrderedDict((full, v.data if isinstance(v, Parameter) else v)
                           for full, _, _, v in self._named_state())

    def load_state_dict(self, state):
        """Copy arrays into the parameters and buffers; names and shapes must match exactly. Each keeps
        its dtype and device (a buffer gets a copy: its running statistics are updated in place)."""
        own = {full: (m, name, v) for full, m, name, v in self._named_state()}
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing {missing}, unexpected {unexpected}")
        for full, (m, name, v) in own.items():
            value, old = state[full], (v.data if isinstance(v, Parameter) else v)
            if tuple(np.shape(value)) != tuple(old.shape):
                raise ValueError(f"load_state_dict: {full} has shape {tuple(np.shape(value))}, "
                                 f"expected {tuple(old.shape)}")
            if isinstance(v, Parameter):
                v.data = to_device(np.asarray(value, dtype=old.dtype) if device_of(value) == "cpu"
                                   else value.astype(old.dtype), device_of(old))
            else:                                                   # a copy, always
                setattr(m, name, to_device(np.array(value, dtype=old.dtype) if device_of(value) == "cpu"
                                           else value.astype(old.dtype, copy=True), device_of(old)))
        return self

    def to(self, device=None, dtype=None):
        """Move every parameter and buffer to ``device`` ('cpu' or 'gpu'), and with ``dtype`` convert
        the floating ones (parameters, gradients, running statistics; not counters) to it."""
        def moved(a):
            if dtype is not None and a.dtype.kind == "f":
                a = a.astype(dtype, copy=False)
            return to_device(a, device) if device is not None else a
        for p in self.parameters():
            p.data = moved(p.data)
            if p.grad is not None:
                p.grad = moved(p.grad)
        for _, m in self.named_modules():
            for name, b in list(m._buffers.items()):
                if b is not None:
                    setattr(m, name, moved(b))
        return self

    @property
    def device(self):
        params = self.parameters()
        return device_of(params[0].data) if params else "cpu"


_initialise = True


@contextlib.contextmanager
def no_init():
    """Layers built inside the block start from zeros, not random weights: for a model whose weights
    are about to be loaded from a file (drawing VGG16's 138M random numbers takes seconds)."""
    global _initialise
    previous, _initialise = _initialise, False
    try:
        yield
    finally:
        _initialise = previous


def _he_normal(shape, fan_in, dtype=DEFAULT_DTYPE):
    if not _initialise:
        return np.zeros(shape, dtype)
    w = F.rng().standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
    w *= math.sqrt(2.0 / fan_in)                       # in place (VGG16's fc6 is 411 MB); a Python float
    return w                                           # keeps float32 float32


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.stride, self.padding = stride, padding
        self.weight = Parameter(_he_normal((out_channels, in_channels, kh, kw), in_channels * kh * kw))
        self.bias = Parameter(np.zeros(out_channels, DEFAULT_DTYPE)) if bias else None

    def forward(self, x, relu=False):
        """The convolution; with ``relu=True`` a ReLU after it, as one op (``F.conv2d(..., relu=True)``)."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, relu=relu)

    def __repr__(self):
        o, i, kh, kw = self.weight.shape
        return f"Conv2d({i}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding})"


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = Parameter(_he_normal((out_features, in_features), in_features))
        self.bias = Parameter(np.zeros(out_features, DEFAULT_DTYPE)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def __repr__(self):
        return f"Linear({self.weight.shape[1]}, {self.weight.shape[0]})"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)

    def __repr__(self):
        return "ReLU()"


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def __repr__(self):
        return f"MaxPool2d({self.kernel_size}, stride={self.stride}" + \
            (f", padding={self.padding})" if self.padding else ")")


class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C): the mean of each image plane."""

    def forward(self, x):
        return F.global_avg_pool2d(x)

    def __repr__(self):
        return "GlobalAvgPool2d()"


class BatchNorm2d(Module):
    """Batch normalisation over the channels of (N, C, H, W) (F.batch_norm; simple.py has the maths).

    Parameters ``weight`` (gamma, ones) and ``bias`` (beta, zeros); buffers ``running_mean`` (zeros),
    ``running_var`` (ones) and ``num_batches_tracked`` (an int64 count), PyTorch's names. In training
    mode (``train()``) it normalises with the batch's statistics and updates the running ones with
    ``momentum``; in eval mode (``eval()``) it is the per-channel affine of the running ones.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, float(eps), float(momentum)
        self.weight = Parameter(np.ones(num_features, DEFAULT_DTYPE))
        self.bias = Parameter(np.zeros(num_features, DEFAULT_DTYPE))
        self.register_buffer("running_mean", np.zeros(num_features, DEFAULT_DTYPE))
        self.register_buffer("running_var", np.ones(num_features, DEFAULT_DTYPE))
        self.register_buffer("num_batches_tracked", np.zeros((), np.int64))

    def forward(self, x):
        out = F.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, self.training,
                           self.momentum, self.eps)
        if self.training:
            self.num_batches_tracked += 1
        return out

    def __repr__(self):
        return f"BatchNorm2d({self.num_features}, eps={self.eps:g}, momentum={self.momentum:g})"


class Flatten(Module):
    def forward(self, x):
        return F.flatten(x)

    def __repr__(self):
        return "Flatten()"


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def __repr__(self):
        return f"Dropout(p={self.p})"


class Sequential(Module):
    """Modules applied in order (the fast tier fuses a Conv2d and the ReLU after it by itself)."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __repr__(self):
        return "Sequential(\n" + "\n".join(f"  ({k}): {m!r}" for k, m in self._modules.items()) + "\n)"
