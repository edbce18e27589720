"""minigrad: a small reverse-mode autodiff engine on NumPy (CPU) or CuPy (GPU).

    import minigrad as mg
    x = mg.Tensor(array, requires_grad=True)
    y = mg.functional.relu(x).sum()
    y.backward()                 # x.grad
    with mg.relu_rule("deconvnet"): ...
    with mg.use_ops("simple"): ...   # the heavy ops' reading tier; default "fast" (env MINIGRAD_OPS)
    mg.set_threads(1)            # the engine's threads (tiers.py)

Reading order: backend, tensor, functional (and losses), heavy_ops, relu_rules, tiers, simple, nn,
optim, gradcheck; for speed, the fast tier: fast/ (conv, pointwise, winograd and winograd_kernels,
linear, relu, pool, batchnorm, parallel: the engine's threads, memory, cpu_kernels, gpu_kernels;
reference holds the naive loops the kernels are tested against).
"""
from . import backend, functional, nn, optim, tiers
from .backend import get_array_module, to_device
from .functional import manual_seed
from .gradcheck import GradcheckError, gradcheck
from .relu_rules import current_rule, relu_rule
from .tensor import Tensor, is_grad_enabled, no_grad
from .tiers import current_ops, gpu_available, set_threads, threads, use_ops

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "relu_rule", "current_rule", "gradcheck",
           "GradcheckError", "functional", "nn", "optim", "backend", "get_array_module",
           "gpu_available", "to_device", "manual_seed", "use_ops", "current_ops", "set_threads", "threads", "tiers"]
