"""minigrad: a small reverse-mode autodiff engine on NumPy (CPU) or CuPy (GPU).

    import minigrad as mg
    x = mg.Tensor(array, requires_grad=True)
    y = mg.functional.relu(x).sum()
    y.backward()                 # x.grad
    with mg.relu_rule("deconvnet"): ...

Reading order: backend, tensor, functional, relu_rules, fast/ (kernels, winograd), nn, optim, gradcheck.
"""
from . import backend, functional, nn, optim
from .backend import get_array_module, gpu_available, to_device
from .functional import manual_seed
from .gradcheck import GradcheckError, gradcheck
from .relu_rules import current_rule, relu_rule
from .tensor import Tensor, is_grad_enabled, no_grad

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "relu_rule", "current_rule", "gradcheck",
           "GradcheckError", "functional", "nn", "optim", "backend", "get_array_module",
           "gpu_available", "to_device", "manual_seed"]
