"""Which implementation of the heavy ops runs: the simple tier (simple.py) or the fast one (fast/).

    MINIGRAD_OPS=simple python scripts/demo.py      # read at import; default: fast
    with mg.use_ops("simple"): ...                  # inside a block
    mg.current_ops()                                # 'simple' or 'fast'

Both implement conv2d (with its fused arguments), linear, max_pool2d, relu, batch_norm and
global_avg_pool2d with the same Function interface and are tested equal; heavy_ops.py checks the
arguments and hands over to the tier in force (``in_force()``). This is the one module that imports
the fast tier, and only when it is first used, so that the simple tier never loads Numba.
"""
import contextlib
import os

from . import backend

TIERS = ("simple", "fast")


def _checked(name, where):
    if name not in TIERS:
        raise ValueError(f"{where}: unknown ops tier {name!r}; choose one of {', '.join(TIERS)}")
    return name


_tier = _checked(os.environ.get("MINIGRAD_OPS", "fast"), "MINIGRAD_OPS")


def current_ops():
    """The name of the tier in force: 'simple' or 'fast'."""
    return _tier


@contextlib.contextmanager
def use_ops(name):
    """Run the heavy ops on tier ``name`` ('simple' or 'fast') inside the block."""
    global _tier
    previous, _tier = _tier, _checked(name, "use_ops")
    _apply_threads()
    try:
        yield
    finally:
        _tier = previous
        _apply_threads()


def in_force():
    """The module of the tier in force: ``minigrad.simple`` or ``minigrad.fast.ops``."""
    if _tier == "simple":
        from . import simple
        return simple
    from .fast import ops
    return ops


# ---- threads -------------------------------------------------------------------------------------
_threads = None       # what set_threads was given (None: not called), applied to each tier in force


def set_threads(n):
    """Run the engine on ``n`` threads, on the tier in force now and on any other put in force later
    (``use_ops``): the fast tier's own, Numba's and, on one thread, the BLAS's (fast/parallel.py: its
    threads split the GEMMs); the simple tier's only threads, the BLAS's (so that it never loads Numba)."""
    global _threads
    if n < 1:
        raise ValueError(f"threads must be at least 1, not {n}")
    _threads = n
    _apply_threads()


def _apply_threads():
    if _threads is None:
        return
    if _tier == "fast":
        from .fast import parallel
        parallel.resize(_threads)
    else:
        import threadpoolctl
        threadpoolctl.threadpool_limits(_threads, user_api="blas")


def threads():
    """How many threads the tier in force runs on: the fast tier's own, or the simple tier's BLAS's."""
    if _tier == "fast":
        from .fast import parallel
        return parallel.threads()
    import threadpoolctl
    return max((p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"), default=1)


# ---- the GPU -------------------------------------------------------------------------------------
def gpu_problem():
    """Why the tier in force cannot run on a GPU here, in one line; None when it can: CuPy, a CUDA
    device and cuBLAS (backend.gpu_problem), and on the fast tier its numba.cuda kernels
    (fast/kernels.py; the simple tier needs no Numba)."""
    problem = backend.gpu_problem()
    if problem or _tier == "simple":
        return problem
    from .fast import kernels
    return kernels.gpu_problem()


def gpu_available():
    """True when the tier in force runs on a GPU here (``gpu_problem``)."""
    return gpu_problem() is None


def check_device(device):
    """Validate a device name; raise a one-line error when the tier in force cannot use the GPU."""
    backend.check_device(device)
    if device == "gpu" and gpu_problem():
        raise RuntimeError(f"--device gpu: no usable GPU: {gpu_problem()}")
    return device
